"""The org CA revokes what it issued: a CRL distribution point in every certificate it issues,
its signed CRL served there (DER, no sign-on), re-signed before it goes stale, and
``certs revoke`` feeding the same CRL store sign-on reads, so a revoked certificate cannot connect.
"""

import datetime as dt
import html

import pytest
from cryptography import x509
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from certs import crls, flows, org_ca, verdicts
from certs.flows import FlowError
from certs.models import Credential, Crl, OrgCARevocation
from certs.x509 import format_thumbprint, sha1_thumbprint
from tests.conftest import ACTOR
from tests.pki import make_client
from tests.test_commands import run

pytestmark = pytest.mark.django_db


@pytest.fixture
def ca(settings):
    settings.MFT_PUBLIC_URL = "https://mft.example.com"
    ca, _ = org_ca.create("Example Org CA", ACTOR)
    verdicts.clear_caches()
    return ca


@pytest.fixture
def issued(ca, rich):
    return org_ca.issue_certificate(rich, ACTOR, password="a password")


def test_issued_certificates_name_the_apps_crl(issued):
    points = issued.certificate.to_x509().extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert [n.value for n in points[0].full_name] == ["https://mft.example.com/crl/org-ca.crl"]


def test_without_a_public_url_no_distribution_point_is_named(settings, rich):
    settings.MFT_PUBLIC_URL = ""
    org_ca.create("Example Org CA", ACTOR)
    cert = org_ca.issue_certificate(rich, ACTOR, password="a password").certificate.to_x509()
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.CRLDistributionPoints)


def test_the_crl_is_served_in_der_to_anyone(client, ca):
    response = client.get("/crl/org-ca.crl")
    assert response.status_code == 200 and response["Content-Type"] == "application/pkix-crl"
    crl = x509.load_der_x509_crl(response.content)
    assert crl.issuer == ca.certificate.to_x509().subject
    assert crl.is_signature_valid(ca.certificate.to_x509().public_key())
    assert client.post("/crl/org-ca.crl").status_code == 405


def test_no_org_ca_no_crl(client, db):
    assert client.get("/crl/org-ca.crl").status_code == 404


def test_the_crl_is_re_signed_before_it_goes_stale(client, ca, settings):
    first = Crl.objects.get()
    Crl.objects.filter(pk=first.pk).update(next_update=timezone.now() + dt.timedelta(days=1))
    crl = x509.load_der_x509_crl(client.get("/crl/org-ca.crl").content)
    assert crl.next_update_utc > timezone.now() + dt.timedelta(days=settings.MFT_ORG_CA_CRL_DAYS - 1)
    (row,) = Crl.objects.all()
    assert int(row.number) == int(first.number) + 1


def test_a_revoked_certificate_cannot_connect(client, ca, issued, rich):
    crls.set_policy(ACTOR, check="crl")
    verdicts.clear_caches()
    cert = issued.certificate.to_x509()
    assert verdicts.judge(cert).authentication.ok
    thumbprint = issued.certificate.thumbprint
    outcome = org_ca.revoke(rich, thumbprint, ACTOR, reason="key-compromise")
    assert "Revoked 'rich'" in outcome.messages[0] and "no longer on rich's profile" in outcome.messages[0]
    assert not Credential.objects.filter(user=rich, key=issued.certificate.sha1).exists()
    connection = verdicts.judge(cert).connection
    assert not connection.ok
    assert "was revoked on" in connection.reason and "(reason: key compromise)" in connection.reason
    assert "the CRL issued by 'Example Org CA'" in connection.reason
    served = x509.load_der_x509_crl(client.get("/crl/org-ca.crl").content)
    entry = served.get_revoked_certificate_by_serial_number(cert.serial_number)
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.key_compromise
    assert AuditEvent.objects.filter(action="certificate.revoke", target_name="rich").exists()


def test_revoking_warns_when_revocation_is_not_checked(ca, issued, rich):
    outcome = org_ca.revoke(rich, issued.certificate.thumbprint, ACTOR)
    assert any("does not check the org CA's certificates" in w for w in outcome.warnings)


def test_what_cannot_be_revoked_says_why(ca, issued, rich, alice, spec):
    thumbprint = issued.certificate.thumbprint
    with pytest.raises(FlowError, match="is not on alice's profile"):
        org_ca.revoke(alice, thumbprint, ACTOR)
    with pytest.raises(FlowError, match="The reason must be one of"):
        org_ca.revoke(rich, thumbprint, ACTOR, reason="bored")
    org_ca.revoke(rich, thumbprint, ACTOR)
    with pytest.raises(FlowError, match="knows no certificate|not on rich's profile|revoked already"):
        org_ca.revoke(rich, thumbprint, ACTOR)
    assert OrgCARevocation.objects.count() == 1
    flows.import_to_profile(rich, [spec.frank.cert], ACTOR)
    with pytest.raises(FlowError, match="was not issued by the org CA"):
        org_ca.revoke(rich, format_thumbprint(sha1_thumbprint(spec.frank.cert)), ACTOR)


def test_the_command(ca, issued, rich):
    thumbprint = issued.certificate.thumbprint
    out = run("certs", "revoke", "rich", thumbprint, "--reason", "superseded")
    assert "Revoked 'rich'" in out and "(reason: superseded)" in out and "The org CA's CRL now lists it" in out
    with pytest.raises(CommandError) as caught:
        run("certs", "revoke", "rich", thumbprint)
    assert caught.value.returncode == 2


def test_a_certificate_of_another_ca_is_not_revoked_by_the_org_ca(ca, rich):
    stranger = make_client("rich")
    with pytest.raises(FlowError, match="knows no certificate"):
        org_ca.revoke(rich, format_thumbprint(sha1_thumbprint(stranger.cert)), ACTOR)


def test_the_revoke_button_shows_the_impact_then_revokes(client, alice, ca, issued, rich):
    client.force_login(alice)
    page = client.get(reverse("certs:edit-client-certs", args=["rich"])).content.decode()
    url = reverse("certs:revoke-certificate", args=["rich", issued.credential.pk])
    assert url in page
    preview = client.get(url)
    assert preview.status_code == 200
    text = preview.content.decode()
    assert "Revoke 'rich'" in html.unescape(text) and "leaves rich" in text and 'value="key-compromise"' in text
    assert not OrgCARevocation.objects.exists()
    response = client.post(url, {"reason": "key-compromise"})
    assert response.status_code == 302
    assert OrgCARevocation.objects.get().reason == "keyCompromise"
    assert not Credential.objects.filter(pk=issued.credential.pk).exists()


def test_the_revoke_page_explains_what_it_cannot_revoke(client, alice, ca, rich, spec):
    client.force_login(alice)
    flows.import_to_profile(rich, [spec.frank.cert], ACTOR)
    credential = Credential.objects.get(user=rich)
    response = client.get(reverse("certs:revoke-certificate", args=["rich", credential.pk]), follow=True)
    assert "was not issued by the org CA" in response.content.decode()
    bad = client.post(reverse("certs:revoke-certificate", args=["rich", 99999]))
    assert bad.status_code == 404


def test_an_org_ca_without_a_crl_gets_one_when_checking_is_turned_on(ca):
    Crl.objects.all().delete()
    run("certs", "revocation", "set", "--check", "crl")
    assert Crl.objects.filter(signer=ca.certificate).count() == 1
