"""EST (RFC 7030): a client written from the RFC fetches the CA certificates and re-enrols with
its current certificate; another user's certificate is refused."""

import base64
import datetime as dt
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from cryptography.x509.oid import NameOID
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from certs import flows, verdicts
from certs.models import Credential, TankEntry
from certs.org_ca import create as create_org_ca
from certs.org_ca import issue_certificate
from certs.x509 import sha1_thumbprint
from tests.conftest import ACTOR
from tests.test_commands import refused, run

pytestmark = pytest.mark.django_db

CACERTS = "/.well-known/est/cacerts"
REENROLL = "/.well-known/est/simplereenroll"


class EstClient:
    """RFC 7030 as a client does it: section 4.1 (cacerts) and 4.2.2 (simplereenroll)."""

    def __init__(self, cert=None):
        headers = {}
        if cert is not None:
            pem = cert.public_bytes(serialization.Encoding.PEM).decode()
            headers["HTTP_X_SSL_CLIENT_CERT"] = quote(pem, safe="")
        self.http = Client(**headers)

    @staticmethod
    def certs_only(response) -> list[x509.Certificate]:
        # 4.1.3 / 4.2.3: application/pkcs7-mime, smime-type=certs-only, base64 transfer encoding.
        assert response["Content-Type"].startswith("application/pkcs7-mime")
        assert "certs-only" in response["Content-Type"]
        assert response["Content-Transfer-Encoding"] == "base64"
        return pkcs7.load_der_pkcs7_certificates(base64.b64decode(response.content))

    def cacerts(self):
        return self.http.get(CACERTS)

    def simplereenroll(self, key, subject="CN=whatever"):
        # 4.2.1: the body is the base64 of a DER PKCS#10 request, application/pkcs10.
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject.split("=", 1)[1])])
        csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
        body = base64.encodebytes(csr.public_bytes(serialization.Encoding.DER))
        return self.http.post(REENROLL, body, content_type="application/pkcs10")


@pytest.fixture
def org_ca(db):
    return create_org_ca("Example Org CA", ACTOR)[0]


def issue(user, **kwargs):
    made = issue_certificate(user, ACTOR, password="pw", days=20, **kwargs)
    return pkcs12.load_pkcs12(made.pkcs12, b"pw").cert.certificate


@pytest.fixture
def rich_cert(org_ca, rich):
    rich.https_mode = "cert"
    rich.save()
    return issue(rich)


def test_cacerts_gives_the_org_ca(org_ca):
    response = EstClient().cacerts()
    assert response.status_code == 200
    assert EstClient.certs_only(response) == [org_ca.certificate.to_x509()]


def test_cacerts_without_an_org_ca_says_so(db):
    response = EstClient().cacerts()
    assert response.status_code == 404 and "no org CA" in response.content.decode()


def test_reenrolment_with_the_current_certificate(rich_cert, org_ca):
    flows.set_self_renewal("automatic", ACTOR)
    key = ec.generate_private_key(ec.SECP256R1())
    client = EstClient(rich_cert)
    response = client.simplereenroll(key)
    assert response.status_code == 200, response.content
    (new,) = EstClient.certs_only(response)
    assert new.subject == rich_cert.subject and new.public_key() == key.public_key()
    assert new.issuer == org_ca.certificate.to_x509().subject
    assert verdicts.judge(new).authentication.user == "rich"
    old = Credential.objects.get(key=sha1_thumbprint(rich_cert))
    assert old.remove_at == rich_cert.not_valid_after_utc
    assert AuditEvent.objects.filter(action="certificate.self_renew").exists()
    again = client.simplereenroll(key)  # the same request again: the same certificate
    assert again.status_code == 200 and EstClient.certs_only(again) == [new]
    other = client.simplereenroll(ec.generate_private_key(ec.SECP256R1()))
    assert other.status_code == 403 and "replaced by a renewal already" in other.content.decode()


def test_on_request_it_waits_for_an_administrator(rich_cert):
    flows.set_self_renewal("approval", ACTOR)
    key = ec.generate_private_key(ec.SECP256R1())
    client = EstClient(rich_cert)
    response = client.simplereenroll(key)
    assert response.status_code == 202 and response["Retry-After"] == "3600"
    assert client.simplereenroll(key).status_code == 202
    (entry,) = TankEntry.objects.all()
    run("certs", "tank", "accept", str(entry.pk), "--replace")
    accepted = client.simplereenroll(key)
    assert accepted.status_code == 200
    assert EstClient.certs_only(accepted)[0].public_key() == key.public_key()


def test_another_users_certificate_is_refused(rich_cert, charlie):
    flows.set_self_renewal("automatic", ACTOR)
    charlie.https_mode = "cert"
    charlie.save()
    theirs = issue(charlie)
    # charlie's certificate re-enrols charlie's certificate, never rich's: the name comes from it.
    response = EstClient(theirs).simplereenroll(ec.generate_private_key(ec.SECP256R1()), subject="CN=rich")
    assert response.status_code == 200
    (new,) = EstClient.certs_only(response)
    assert new.subject.rfc4514_string() == "CN=charlie"
    assert verdicts.judge(new).authentication.user == "charlie"
    assert Credential.objects.filter(user__username="rich").count() == 1


def test_refusals_say_why(rich_cert, spec, toot_installed):
    key = ec.generate_private_key(ec.SECP256R1())
    assert EstClient().simplereenroll(key).status_code == 401
    stranger = EstClient(spec.frank.cert).simplereenroll(key)
    assert stranger.status_code == 403 and "does not sign anyone on" in stranger.content.decode()
    off = EstClient(rich_cert).simplereenroll(key)
    assert off.status_code == 403 and "turned off" in off.content.decode()
    flows.set_self_renewal("automatic", ACTOR)
    bad = EstClient(rich_cert).http.post(REENROLL, b"not base64 !!", content_type="application/pkcs10")
    assert bad.status_code == 400 and "base64-encoded PKCS#10" in bad.content.decode()
    junk = EstClient(rich_cert).http.post(REENROLL, base64.b64encode(b"junk"), content_type="application/pkcs10")
    assert junk.status_code == 400 and "not a certificate signing request" in junk.content.decode()
    assert EstClient(rich_cert).http.get(REENROLL).status_code == 405
    assert Credential.objects.count() == 1


# --- first enrolment, approved by an administrator -----------------------------------------------

ENROLL = "/.well-known/est/simpleenroll"


def enroll(username, secret, key, subject="CN=whatever"):
    """RFC 7030 4.2.1 with HTTP Basic (3.2.3): the client's first certificate."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject.split("=", 1)[1])])
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    basic = base64.b64encode(f"{username}:{secret}".encode()).decode()
    return Client().post(
        ENROLL,
        base64.encodebytes(csr.public_bytes(serialization.Encoding.DER)),
        content_type="application/pkcs10",
        HTTP_AUTHORIZATION=f"Basic {basic}",
    )


def approve(username, *args) -> str:
    out = run("certs", "enrol", username, *args)
    return out.split("One-time secret (shown only now): ")[1].split()[0]


def test_an_approved_enrolment_gives_one_certificate_on_the_profile(org_ca, rich):
    secret = approve("rich", "--cn", "Rich Gateway", "--days", "90")
    key = ec.generate_private_key(ec.SECP256R1())
    response = enroll("rich", secret, key)
    assert response.status_code == 200, response.content
    (cert,) = EstClient.certs_only(response)
    assert cert.subject.rfc4514_string() == "CN=Rich Gateway" and cert.public_key() == key.public_key()
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days == 90
    assert verdicts.judge(cert).authentication.user == "rich"
    assert Credential.objects.get(user=rich).source == "EST enrolment"
    assert AuditEvent.objects.filter(action="enrolment.use", target_user=rich).exists()
    again = enroll("rich", secret, key)  # a retry of the same request: the same certificate
    assert again.status_code == 200 and EstClient.certs_only(again) == [cert]
    other = enroll("rich", secret, ec.generate_private_key(ec.SECP256R1()))
    assert other.status_code == 400 and "used already" in other.content.decode()
    assert Credential.objects.filter(user=rich).count() == 1


def test_enrolment_refusals_say_why(monkeypatch, org_ca, rich, charlie):
    secret = approve("rich")
    key = ec.generate_private_key(ec.SECP256R1())
    missing = Client().post(ENROLL, b"", content_type="application/pkcs10")
    assert missing.status_code == 401 and "HTTP Basic" in missing.content.decode()
    assert "Basic" in missing["WWW-Authenticate"]
    for username, password in (("rich", "guess"), ("charlie", secret), ("nobody", secret)):
        refused = enroll(username, password, key)
        assert refused.status_code == 401 and "do not match an open enrolment" in refused.content.decode()
    later = timezone.now() + dt.timedelta(hours=73)
    monkeypatch.setattr(timezone, "now", lambda: later)
    expired = enroll("rich", secret, key)
    assert expired.status_code == 400 and "has expired" in expired.content.decode()
    assert not Credential.objects.exists()


def test_enrol_is_refused_in_words_on_the_command_line(org_ca, rich, charlie):
    assert "1 to 720 hours" in refused("certs", "enrol", "rich", "--hours", "0")
    assert "1 to 3650 days" in refused("certs", "enrol", "rich", "--days", "99999")
    assert "charlie" in refused("certs", "enrol", "rich", "--cn", "charlie")
