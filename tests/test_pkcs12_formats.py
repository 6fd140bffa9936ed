"""PKCS#12 files the app hands out: modern encryption (AES-256-CBC, PBKDF2-SHA256) by default,
legacy (3DES, SHA-1 MAC) on request, each opened by OpenSSL's own command-line tool."""

import re
import shutil
import subprocess

import pytest
from django.core.management import CommandError
from django.urls import reverse

from certs import pfx
from certs.issuing import PKCS12_WHICH
from certs.models import Credential
from certs.org_ca import create as create_org_ca
from certs.org_ca import issue_certificate
from tests.conftest import ACTOR
from tests.test_client_cert_pages import create_new, text
from tests.test_commands import run

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(shutil.which("openssl") is None, reason="the OpenSSL command-line tool is not installed"),
]

PASSWORD = "correct-horse-battery"


@pytest.fixture
def org_ca(db):
    return create_org_ca("Example Org CA", ACTOR)[0]


def openssl_info(data: bytes, password: str, tmp_path) -> str:
    """``openssl pkcs12 -info -nokeys``, with ``-legacy`` when an OpenSSL 3 needs it for the file."""
    path = tmp_path / "bundle.p12"
    path.write_bytes(data)
    command = ["openssl", "pkcs12", "-info", "-nokeys", "-in", str(path), "-passin", f"pass:{password}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    version = subprocess.run(["openssl", "version"], capture_output=True, text=True, check=True).stdout
    if done.returncode != 0 and version.startswith("OpenSSL 3"):
        done = subprocess.run([*command, "-legacy"], capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def assert_modern(info: str):
    assert "MAC: sha256" in info
    assert "PBES2, PBKDF2, AES-256-CBC" in info and "hmacWithSHA256" in info
    assert "TripleDES" not in info
    assert "BEGIN CERTIFICATE" in info


def assert_legacy(info: str):
    assert "MAC: sha1" in info
    assert "pbeWithSHA1And3-KeyTripleDES-CBC" in info
    assert "AES" not in info
    assert "BEGIN CERTIFICATE" in info


def test_modern_is_the_default_and_opens_with_openssl(org_ca, rich, tmp_path):
    issued = issue_certificate(rich, ACTOR, password=PASSWORD)
    assert_modern(openssl_info(issued.pkcs12, PASSWORD, tmp_path))


def test_legacy_opens_with_openssl_and_with_the_apps_own_reader(org_ca, rich, tmp_path):
    issued = issue_certificate(rich, ACTOR, password=PASSWORD, pkcs12_format="legacy", key_type="rsa-2048")
    assert_legacy(openssl_info(issued.pkcs12, PASSWORD, tmp_path))
    opened = pfx.open_pfx(issued.pkcs12, [PASSWORD.encode()], want_key=True)
    assert opened.key is not None and opened.certificates[0] == issued.certificate.to_x509()


def test_an_unknown_format_is_refused_in_words(org_ca, rich):
    from certs.flows import FlowError

    with pytest.raises(FlowError, match="modern or the legacy format"):
        issue_certificate(rich, ACTOR, password=PASSWORD, pkcs12_format="rc2")
    assert not Credential.objects.exists()


def test_create_new_offers_both_and_says_which_systems_need_which(client, alice, rich, org_ca, tmp_path):
    client.force_login(alice)
    page = text(client.get(reverse("certs:edit-client-certs", args=["rich"])))
    assert "Windows Server 2016 or older" in page and "older macOS" in page
    assert re.search(
        r'<option value="modern" selected>',
        client.get(reverse("certs:edit-client-certs", args=["rich"])).content.decode(),
    )
    for chosen, check in (("legacy", assert_legacy), ("modern", assert_modern), ("", assert_modern)):
        response = create_new(
            client, "rich", cn=f"rich {chosen or 'default'}", key_type="ec-p256", days="30", pkcs12_format=chosen
        )
        body = text(response)
        assert PKCS12_WHICH in body
        password = re.search(r'id="p12-password">([^<]+)<', body).group(1).strip()
        download = re.search(r'id="download-p12" href="([^"]+)"', body).group(1)
        check(openssl_info(client.get(download).content, password, tmp_path))


def test_create_new_explains_a_bad_format_without_a_500(client, alice, rich, org_ca):
    client.force_login(alice)
    response = create_new(client, "rich", cn="rich", key_type="ec-p256", days="30", pkcs12_format="rc2-40")
    assert response.status_code == 400
    assert "Select a valid choice" in text(response)
    assert not Credential.objects.exists()


def test_certs_issue_writes_either_format(org_ca, rich, tmp_path):
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD + "\n")
    out = run(
        "certs",
        "issue",
        "rich",
        "--out",
        str(tmp_path / "old.p12"),
        "--password-file",
        str(secret),
        "--format",
        "legacy",
    )
    assert "Its encryption: Legacy: 3DES, SHA-1 MAC" in out
    assert_legacy(openssl_info((tmp_path / "old.p12").read_bytes(), PASSWORD, tmp_path))
    run("certs", "issue", "rich", "--cn", "rich2", "--out", str(tmp_path / "new.p12"), "--password-file", str(secret))
    assert_modern(openssl_info((tmp_path / "new.p12").read_bytes(), PASSWORD, tmp_path))
    with pytest.raises(CommandError, match="invalid choice: 'des'"):
        run(
            "certs",
            "issue",
            "rich",
            "--out",
            str(tmp_path / "x.p12"),
            "--password-file",
            str(secret),
            "--format",
            "des",
        )
