"""Self-service renewal: a user renews, on their own page, a certificate the org CA issued them."""

import re
import shutil
import subprocess
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from certs import flows, self_service, verdicts
from certs.models import Credential, TankEntry
from certs.org_ca import create as create_org_ca
from certs.org_ca import issue_certificate
from certs.x509 import sha1_thumbprint
from signon.session import How
from tests.conftest import ACTOR
from tests.test_commands import run

pytestmark = pytest.mark.django_db


@pytest.fixture
def org_ca(db):
    return create_org_ca("Example Org CA", ACTOR)[0]


@pytest.fixture
def issued(org_ca, rich):
    """rich's certificate from the org CA, and his mode: certificate only over HTTPS."""
    rich.https_mode = "cert"
    rich.save()
    made = issue_certificate(rich, ACTOR, password="pw", days=20)
    bundle = pkcs12.load_pkcs12(made.pkcs12, b"pw")
    return bundle.cert.certificate, bundle.key


def browser(cert) -> Client:
    """A browser that presents ``cert`` with every request (through the front proxy's header)."""
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    client = Client(HTTP_X_SSL_CLIENT_CERT=quote(pem, safe=""))
    client.get("/", follow=True)
    return client


def credential_of(cert) -> Credential:
    return Credential.objects.get(key=sha1_thumbprint(cert))


def make_csr(cn="anything", key=None) -> bytes:
    key = key or ec.generate_private_key(ec.SECP256R1())
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .sign(key, hashes.SHA256())
    )
    return request.public_bytes(serialization.Encoding.PEM)


def test_off_by_default_nothing_is_offered(issued):
    cert, _ = issued
    page = browser(cert).get(reverse("files:home")).content.decode()
    assert "Renew…" not in page and "this certificate alone signs you on" in page
    response = browser(cert).get(reverse("files:self-renew", args=[credential_of(cert).pk]), follow=True)
    assert "Renewing certificates yourself is turned off" in response.content.decode()


def test_automatic_with_a_new_key_replaces_the_old_one_at_its_expiry(issued, tmp_path):
    cert, _ = issued
    assert "now automatic" in run("certs", "self-renewal", "automatic")
    client = browser(cert)
    old = credential_of(cert)
    assert "Renew…" in client.get(reverse("files:home")).content.decode()
    response = client.post(
        reverse("files:self-renew", args=[old.pk]),
        {"how": "generate", "key_type": "ec-p256", "pkcs12_format": "modern"},
        follow=True,
    )
    body = response.content.decode()
    assert "Renewed by its owner" in body
    password = re.search(r'id="p12-password">([^<]+)<', body).group(1).strip()
    download = re.search(r'id="download-renewed" href="([^"]+)"', body).group(1)
    data = client.get(download).content
    new = pkcs12.load_pkcs12(data, password.encode()).cert.certificate
    assert new.subject == cert.subject and new.not_valid_after_utc >= cert.not_valid_after_utc
    old.refresh_from_db()
    assert old.remove_at == cert.not_valid_after_utc and old.replaced_by.key == sha1_thumbprint(new)
    assert verdicts.judge(new).authentication.user == "rich"
    assert AuditEvent.objects.filter(action="certificate.self_renew", actor_name="rich").exists()
    assert "That download is no longer available" in client.get(download, follow=True).content.decode()
    if shutil.which("openssl"):
        (tmp_path / "r.p12").write_bytes(data)
        done = subprocess.run(
            ["openssl", "pkcs12", "-info", "-nokeys", "-in", str(tmp_path / "r.p12"), "-passin", f"pass:{password}"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0 and "AES-256-CBC" in done.stdout + done.stderr


def test_on_request_a_csr_renewal_waits_in_the_holding_tank(issued):
    cert, _ = issued
    flows.set_self_renewal("approval", ACTOR)
    client = browser(cert)
    old = credential_of(cert)
    key = ec.generate_private_key(ec.SECP384R1())
    response = client.post(
        reverse("files:self-renew", args=[old.pk]),
        {"how": "csr", "csr_text": make_csr("Mallory", key).decode(), "key_type": "ec-p256", "pkcs12_format": "modern"},
        follow=True,
    )
    body = response.content.decode()
    assert "waits in rich&#x27;s holding tank" in body and "BEGIN CERTIFICATE" in body
    (entry,) = TankEntry.objects.all()
    assert entry.renewal_of_id == old.pk and entry.user.username == "rich"
    new = entry.certificate.to_x509()
    assert new.subject == cert.subject  # the name is the old one's, not the request's
    assert new.public_key().public_numbers() == key.public_key().public_numbers()
    assert not verdicts.judge(new).authentication.ok
    assert "waiting for an administrator" in client.get(reverse("files:home")).content.decode()
    run("certs", "tank", "accept", str(entry.pk), "--replace")
    assert verdicts.judge(new).authentication.user == "rich"


def test_only_with_the_certificate_being_renewed(issued, org_ca, rich):
    cert, _ = issued
    flows.set_self_renewal("automatic", ACTOR)
    other = issue_certificate(rich, ACTOR, password="pw", cn="rich laptop", days=20)
    other_cert = pkcs12.load_pkcs12(other.pkcs12, b"pw").cert.certificate
    client = browser(other_cert)
    response = client.post(
        reverse("files:self-renew", args=[credential_of(cert).pk]),
        {"how": "generate", "key_type": "ec-p256"},
        follow=True,
    )
    assert "Sign on with this certificate (or with your password) to renew it." in response.content.decode()
    assert Credential.objects.filter(user=rich).count() == 2


def test_another_users_certificate_is_not_theirs_to_renew(issued, org_ca, charlie):
    cert, _ = issued
    flows.set_self_renewal("automatic", ACTOR)
    charlie.https_mode = "cert"
    charlie.save()
    theirs = pkcs12.load_pkcs12(issue_certificate(charlie, ACTOR, password="pw").pkcs12, b"pw").cert.certificate
    response = browser(theirs).get(reverse("files:self-renew", args=[credential_of(cert).pk]))
    assert response.status_code == 404


def test_a_certificate_from_another_ca_is_renewed_by_its_ca(spec, rich, org_ca, toot_installed):
    flows.set_self_renewal("automatic", ACTOR)
    rich.https_mode = "cert"
    rich.save()
    flows.import_to_profile(rich, [spec.rich.cert], ACTOR)
    client = browser(spec.rich.cert)
    page = client.get(reverse("files:home")).content.decode()
    assert "It was not issued by the org CA; renew it with whoever issued it." in page


def test_bad_requests_are_refused_in_words(issued):
    cert, _ = issued
    flows.set_self_renewal("automatic", ACTOR)
    client = browser(cert)
    url = reverse("files:self-renew", args=[credential_of(cert).pk])
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - refused, as it should be
    der = x509.load_pem_x509_csr(make_csr("anything")).public_bytes(serialization.Encoding.DER)
    tampered = der.replace(b"anything", b"anythinG")  # DER, with its name changed after signing
    for data, expected in (
        ({"how": "csr", "csr_text": ""}, "Choose the request file, or paste the request."),
        ({"how": "csr", "csr_text": "hello"}, "This is not a certificate signing request"),
        ({"how": "csr", "csr_text": make_csr(key=weak).decode()}, "it needs 2048 or more"),
        ({"how": "csr", "csr_file": SimpleUploadedFile("r.csr", tampered)}, "was not made with the key it names"),
        ({"how": "sideways"}, "Select a valid choice"),
    ):
        response = client.post(url, {"key_type": "ec-p256", "pkcs12_format": "modern", **data})
        assert response.status_code == 400, data
        assert expected in response.content.decode(), data
    assert Credential.objects.count() == 1


def test_the_setting_on_the_trusted_cas_page(client, alice):
    client.force_login(alice)
    assert "Self-service renewal" in client.get(reverse("certs:cas")).content.decode()
    response = client.post(reverse("certs:self-renewal"), {"mode": "approval"}, follow=True)
    assert "Self-service renewal is now on request" in response.content.decode()
    response = client.post(reverse("certs:self-renewal"), {"mode": "whenever"}, follow=True)
    assert "not &#x27;whenever&#x27;" in response.content.decode()


def test_only_near_its_end(org_ca, rich):
    flows.set_self_renewal("automatic", ACTOR)
    rich.https_mode = "cert"
    rich.save()
    young = pkcs12.load_pkcs12(issue_certificate(rich, ACTOR, password="pw", days=90).pkcs12, b"pw").cert.certificate
    page = browser(young).get(reverse("files:home")).content.decode()
    assert "It can be renewed from" in page and "(30 days before it expires)" in page
    response = browser(young).post(
        reverse("files:self-renew", args=[credential_of(young).pk]), {"how": "generate", "key_type": "ec-p256"}
    )
    assert response.status_code == 302 and Credential.objects.count() == 1


def test_signed_on_with_a_password_the_user_may_renew(issued, rich):
    cert, _ = issued
    flows.set_self_renewal("automatic", ACTOR)
    rich.https_mode = "cert-or-password"
    rich.set_password("a long enough password")
    rich.save()
    client = Client()
    response = client.post(reverse("login"), {"username": "rich", "password": "a long enough password"}, follow=True)
    assert response.wsgi_request.user.username == "rich"
    response = client.post(
        reverse("files:self-renew", args=[credential_of(cert).pk]),
        {"how": "csr", "csr_text": make_csr().decode(), "key_type": "ec-p256", "pkcs12_format": "modern"},
        follow=True,
    )
    assert "Renewed by its owner" in response.content.decode()
    assert Credential.objects.filter(user=rich).count() == 2


def test_two_submissions_at_once_make_one_renewal(monkeypatch, issued):
    cert, _ = issued
    flows.set_self_renewal("automatic", ACTOR)
    old = credential_of(cert)
    how = How("certificate", "thumbprint", old.certificate.sha256)
    # The second submission passed its checks before the first one was written.
    monkeypatch.setattr(self_service, "refusal", lambda *args, **kwargs: None)
    self_service.renew(old.user, old.pk, how, csr=make_csr())
    with pytest.raises(flows.FlowError, match="renewed a moment ago"):
        self_service.renew(old.user, old.pk, how, csr=make_csr())
    assert Credential.objects.count() == 2
