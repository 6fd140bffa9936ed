"""Trusted CAs, the root store, intermediates and the certificate page, through the test client."""

import html
import re

import pytest
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from audit.models import AuditEvent
from certs import flows, issuing
from certs.loading import load_certificates
from certs.models import Certificate, OrgCA, Store, StoreEntry, TrustSettings
from certs.org_ca import create as create_org_ca
from certs.x509 import sha1_thumbprint, sha256_fingerprint
from tests.conftest import ACTOR, install
from tests.pki import make_root

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, alice):
    client.force_login(alice)
    return client


def text(response) -> str:
    return re.sub(r"\s+", " ", html.unescape(response.content.decode()))


def upload(name, data):
    return SimpleUploadedFile(name, data)


# --- root store and intermediates ----------------------------------------------------------


def test_installing_a_root_warns_that_the_proxy_bundle_must_be_re_exported(admin_client, spec):
    response = admin_client.post(reverse("certs:roots-add"), {"file": upload("toot.pem", spec.toot.pem)}, follow=True)
    body = text(response)
    assert "Added 'Toot'" in body and "to the trusted root store." in body
    assert "Re-export the front proxy's client CA bundle" in body
    assert StoreEntry.objects.filter(store=Store.ROOT).count() == 1
    assert "Toot" in text(admin_client.get(reverse("certs:roots")))


def test_installing_a_client_certificate_as_root_is_allowed_with_a_warning(admin_client, spec):
    response = admin_client.post(reverse("certs:roots-add"), {"file": upload("frank.pem", spec.frank.pem)}, follow=True)
    assert "is not a CA (no basic constraints marking it as one): installing it trusts this one" in text(response)


def test_the_bundle_download_is_the_root_store(admin_client, spec):
    install(Store.ROOT, spec.toot, spec.chug)
    response = admin_client.get(reverse("certs:roots-bundle"))
    assert response["Content-Disposition"] == 'attachment; filename="client-roots.pem"'
    assert load_certificates(response.content) == [spec.toot.cert, spec.chug.cert]


def test_removing_a_root_asks_first(admin_client, spec):
    install(Store.ROOT, spec.toot)
    remove = reverse("certs:roots-remove", args=[sha256_fingerprint(spec.toot.cert)])
    assert "Certificates that connect only through this certificate will no longer connect." in text(
        admin_client.get(remove)
    )
    assert StoreEntry.objects.exists()
    response = admin_client.post(remove, follow=True)
    assert "Removed 'Toot'" in text(response)
    assert not StoreEntry.objects.exists()
    assert admin_client.post(remove).status_code == 404


def test_an_intermediate_must_be_a_ca(admin_client, spec):
    response = admin_client.post(reverse("certs:intermediates-add"), {"file": upload("f.pem", spec.frank.pem)})
    assert response.status_code == 400
    assert "'Frank' is not a CA certificate" in text(response)
    assert not StoreEntry.objects.exists()


def test_intermediates_are_added_and_removed(admin_client, spec):
    admin_client.post(reverse("certs:intermediates-add"), {"file": upload("c.pem", spec.chug.pem)})
    assert "Chug and Ring" in text(admin_client.get(reverse("certs:intermediates")))
    admin_client.post(reverse("certs:intermediates-remove", args=[sha256_fingerprint(spec.chug.cert)]))
    assert not StoreEntry.objects.exists()


@pytest.mark.parametrize("name", ["roots-add", "intermediates-add", "cas-add"])
def test_store_uploads_refuse_bad_files_on_the_page(admin_client, name):
    response = admin_client.post(reverse(f"certs:{name}"), {"file": upload("junk.bin", b"\x30\x82\xff\xff junk")})
    assert response.status_code == 400
    assert "truncated" in text(response)
    assert not StoreEntry.objects.exists()


def test_unknown_fingerprints_are_404(admin_client):
    assert admin_client.get(reverse("certs:certificate", args=["AB" * 32])).status_code == 404
    for address in [
        "/trust/roots/nonsense/remove/",
        "/certificate/%00/",
        "/trust/cas/%00/approve/",
        "/doctor/?certificate=%00",
    ]:
        assert admin_client.get(address).status_code == 404, address


# --- Trusted CAs ---------------------------------------------------------------------------


def test_an_approved_ca_that_is_not_installed_is_flagged(admin_client, spec):
    install(Store.ROOT, spec.toot)
    install(Store.INTERMEDIATE, spec.chug)
    install(Store.APPROVED, spec.chug, spec.verisign)
    body = text(admin_client.get(reverse("certs:cas")))
    assert body.count("chains to the root store") == 1
    assert (
        "The certificate is self-signed and is not installed in the trusted root store. "
        "Certificates it signs cannot connect."
    ) in body


def test_a_ca_is_approved_from_a_file_or_from_the_root_store(admin_client, spec):
    admin_client.post(reverse("certs:cas-add"), {"file": upload("chug.pem", spec.chug.pem)})
    install(Store.ROOT, spec.toot)
    entry = StoreEntry.objects.get(store=Store.ROOT)
    response = admin_client.post(reverse("certs:cas-add-from-root"), {"entry": entry.pk}, follow=True)
    assert "Added 'Toot'" in text(response)
    assert StoreEntry.objects.filter(store=Store.APPROVED).count() == 2
    bad = admin_client.post(reverse("certs:cas-add-from-root"), {"entry": 99999})
    assert bad.status_code == 400


def test_removing_an_approved_ca_says_what_stops_working(admin_client, spec):
    install(Store.APPROVED, spec.chug)
    remove = reverse("certs:cas-remove", args=[sha256_fingerprint(spec.chug.cert)])
    assert "will no longer authenticate by CN" in text(admin_client.get(remove))
    admin_client.post(remove)
    assert not StoreEntry.objects.exists()


def test_the_match_cn_switch(admin_client):
    response = admin_client.post(reverse("certs:match-cn"), {"match_cn": "on"}, follow=True)
    assert "Turned Match Cert CN to Username/Full Name on." in text(response)
    assert TrustSettings.get().match_cn
    confirm = admin_client.post(reverse("certs:match-cn"), {})
    assert "Turn Match Cert CN to Username/Full Name off?" in text(confirm)
    assert TrustSettings.get().match_cn  # not yet: the page asks first
    admin_client.post(reverse("certs:match-cn"), {"confirm": "yes"})
    assert not TrustSettings.get().match_cn
    assert AuditEvent.objects.filter(action="match_cn.set").count() == 2


def test_the_org_ca_is_created_and_its_certificate_downloaded(admin_client):
    response = admin_client.post(
        reverse("certs:org-ca-create"), {"cn": "Example Org CA", "key_type": "ec-p256", "days": "3650"}, follow=True
    )
    assert "Created the org CA 'Example Org CA'" in text(response)
    download = admin_client.get(reverse("certs:org-ca-download"))
    (cert,) = load_certificates(download.content)
    assert cert == OrgCA.active().certificate.to_x509()
    assert b"PRIVATE KEY" not in download.content


def test_rotating_the_org_ca_needs_the_box_ticked(admin_client):
    create_org_ca("First", ACTOR)
    data = {"cn": "Second", "key_type": "ec-p256", "days": "3650"}
    refused = admin_client.post(reverse("certs:org-ca-create"), data)
    assert refused.status_code == 400
    assert "Tick the box to confirm" in text(refused)
    assert OrgCA.active().certificate.common_name == "First"
    admin_client.post(reverse("certs:org-ca-create"), {**data, "rotate": "yes"})
    assert OrgCA.active().certificate.common_name == "Second"


def test_an_org_ca_is_imported_from_a_pkcs12_with_its_key(admin_client, spec):
    ca = make_root("Imported CA")
    p12 = pkcs12.serialize_key_and_certificates(b"ca", ca.key, ca.cert, None, BestAvailableEncryption(b"secret"))
    wrong = admin_client.post(reverse("certs:org-ca-import"), {"file": upload("ca.p12", p12), "password": "x"})
    assert "The password does not open this PKCS#12 file" in text(wrong)
    response = admin_client.post(
        reverse("certs:org-ca-import"), {"file": upload("ca.p12", p12), "password": "secret"}, follow=True
    )
    assert "Imported the org CA 'Imported CA'" in text(response)
    assert OrgCA.active().certificate.sha1 == sha1_thumbprint(ca.cert)


@pytest.mark.parametrize("kind", ["no key", "not a CA", "mismatched key"])
def test_an_org_ca_import_that_cannot_sign_is_refused(admin_client, spec, kind):
    cert, key = {
        "no key": (spec.toot.cert, None),
        "not a CA": (spec.frank.cert, spec.frank.key),
        "mismatched key": (spec.toot.cert, spec.chug.key),
    }[kind]
    if kind == "mismatched key":
        # cryptography refuses to pair them, so build the file with the key alone.
        p12 = pkcs12.serialize_key_and_certificates(b"x", key, None, [cert], BestAvailableEncryption(b"pw"))
    else:
        p12 = pkcs12.serialize_key_and_certificates(b"x", key, cert, None, BestAvailableEncryption(b"pw"))
    response = admin_client.post(reverse("certs:org-ca-import"), {"file": upload("x.p12", p12), "password": "pw"})
    assert response.status_code == 400
    assert OrgCA.active() is None


def test_the_org_ca_page_never_shows_a_key(admin_client):
    create_org_ca("Example Org CA", ACTOR)
    body = admin_client.get(reverse("certs:cas")).content
    assert b"PRIVATE KEY" not in body
    key_pem = bytes(OrgCA.active().encrypted_key)
    assert key_pem[40:80] not in body


# --- the certificate page --------------------------------------------------------------------


def test_the_certificate_page_shows_fields_extensions_and_uses(admin_client, spec, rich):
    install(Store.ROOT, spec.toot)
    install(Store.INTERMEDIATE, spec.chug)
    flows.import_to_profile(rich, [spec.frank.cert], ACTOR)
    body = text(admin_client.get(reverse("certs:certificate", args=[sha256_fingerprint(spec.frank.cert)])))
    assert "CN=Frank" in body and "CN=Chug and Ring" in body
    assert "clientAuth" in body and "Digital signature" in body
    assert "On rich's profile by thumbprint" in re.sub(r"<[^>]+>", "", body)
    chug = text(admin_client.get(reverse("certs:certificate", args=[sha256_fingerprint(spec.chug.cert)])))
    assert "In the intermediate CA pool" in chug
    assert "Certificate signing, CRL signing" in chug


def test_issuing_passwords_are_random_and_readable():
    passwords = {issuing.generate_password() for _ in range(50)}
    assert len(passwords) == 50
    assert all(re.fullmatch(r"([A-Za-z2-9]{5}-){3}[A-Za-z2-9]{5}", p) for p in passwords)
    assert not any(set(p) & set("0O1lI") for p in passwords)


def test_installing_a_certificate_made_with_openssl_req_x509_warns_it_becomes_an_anchor(admin_client, tmp_path):
    """`openssl req -x509` marks its certificate CA:TRUE: installed, it vouches for what its key signs."""
    import shutil
    import subprocess

    openssl = shutil.which("openssl")
    assert openssl, "openssl is part of the base system the tests run on"
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=Partner Laptop",
            "-days",
            "30",
        ],
        check=True,
        capture_output=True,
    )
    response = admin_client.post(
        reverse("certs:roots-add"), {"file": upload("laptop.pem", cert.read_bytes())}, follow=True
    )
    assert "installing it trusts every certificate its key signs, not only itself" in text(response)
    proper = admin_client.post(
        reverse("certs:roots-add"), {"file": upload("ca.pem", make_root("Proper CA").pem)}, follow=True
    )
    assert "trusts every certificate its key signs" not in text(proper)


def test_the_built_in_server_needs_no_reminder_to_re_export_the_bundle(admin_client, spec, settings):
    """The built-in server reads the root store itself: there is no proxy to reload."""
    settings.MFT_PROXY_FORMAT = "builtin"
    response = admin_client.post(reverse("certs:roots-add"), {"file": upload("toot.pem", spec.toot.pem)}, follow=True)
    assert "Added 'Toot'" in text(response)
    assert "Re-export" not in text(response)


def test_the_certificate_page_says_by_which_entry_a_profile_holds_it(admin_client, rich, spec):
    flows.import_to_profile(rich, [spec.frank.cert], ACTOR)
    flows.add_cn(rich, "Frank", ACTOR, certificate=Certificate.objects.get(sha1=sha1_thumbprint(spec.frank.cert)))
    page = text(admin_client.get(reverse("certs:certificate", args=[sha256_fingerprint(spec.frank.cert)])))
    page = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", page))
    assert "On rich's profile by thumbprint" in page and "On rich's profile by CN 'Frank'" in page
