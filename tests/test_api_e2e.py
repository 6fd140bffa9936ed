"""End to end: the README's partner-onboarding script (curl only) against the app under gunicorn,
and an administrator calling the API with their certificate through the built-in HTTPS server."""

import json
import os
import re
import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from certs.x509 import format_thumbprint, sha1_thumbprint
from tests.e2e import ROOT, AppServer, require
from tests.pki import make_client, make_root

pytestmark = pytest.mark.e2e


def onboarding_script() -> str:
    readme = (ROOT / "README.md").read_text()
    found = re.search(r"<!-- onboarding-script -->\n```sh\n(.*?)```", readme, re.S)
    assert found, "the README has no onboarding script"
    return found.group(1)


@pytest.fixture(scope="module")
def curl():
    return require("curl", shutil.which("curl"), "apt-get install curl")


@pytest.fixture(scope="module")
def app(tmp_path_factory, curl):
    server = AppServer(tmp_path_factory.mktemp("api-app")).start()
    yield server
    server.stop()


def test_the_readmes_onboarding_script_onboards_a_partner(app, tmp_path):
    app.manage("users", "add", "ops", "--admin")
    token = app.manage("users", "token", "create", "ops", "--name", "onboarding").stdout.strip().splitlines()[-1]
    partner_ca = make_root("Partner Corp CA")
    partner = make_client("Partner Gateway", partner_ca)
    (tmp_path / "ca.pem").write_bytes(partner_ca.pem)
    (tmp_path / "partner.pem").write_bytes(partner.pem)
    script = tmp_path / "onboard.sh"
    script.write_text(onboarding_script())
    env = {
        "PATH": os.environ["PATH"],
        "MFT_URL": app.url,
        "MFT_TOKEN": token,
        "PARTNER": "partnercorp",
        "PARTNER_NAME": "Partner Corp",
        "PARTNER_CERT": str(tmp_path / "partner.pem"),
        "PARTNER_CA": str(tmp_path / "ca.pem"),
    }
    runs = [subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True, timeout=120) for _ in "12"]
    for run in runs:
        assert run.returncode == 0, f"{run.stdout}\n{run.stderr}"

    users = {u["username"]: u for u in json.loads(app.manage("users", "list", "--json").stdout)}
    assert users["partnercorp"]["https_mode"] == "cert" and users["partnercorp"]["full_name"] == "Partner Corp"
    profile = json.loads(app.manage("certs", "user", "partnercorp", "list", "--json").stdout)
    assert sorted((e["kind"], e["value"]) for e in profile) == [
        ("cn", "Partner Gateway"),
        ("thumbprint", format_thumbprint(sha1_thumbprint(partner.cert))),
    ]
    ca_thumbprint = format_thumbprint(sha1_thumbprint(partner_ca.cert))
    for area in ("roots", "cas"):
        assert [c["thumbprint"] for c in json.loads(app.manage("certs", area, "list", "--json").stdout)] == [
            ca_thumbprint
        ]
    verdict = json.loads(app.manage("certs", "check", str(tmp_path / "partner.pem"), "--json").stdout)
    assert (verdict["category"], verdict["authenticate"]["user"]) == ("authenticates", "partnercorp")
    # The second run was answered from the first: nothing was made twice.
    events = json.loads(app.manage("audit", "list", "--json", "--limit", "500").stdout)
    about_partner = [e["action"] for e in events if e["target"] == "partnercorp"]
    assert (about_partner.count("user.create"), about_partner.count("credential.add")) == (1, 2)
    assert sum(1 for e in events if e["action"] == "approved.add") == 1
    assert any(e["action"] == "token.use" and e["actor"] == "ops" for e in events)
    assert "Created user 'partnercorp'" in runs[0].stdout  # the audit log read at the end


@pytest.fixture(scope="module")
def tls_app(tmp_path_factory, curl):
    server = AppServer(tmp_path_factory.mktemp("api-tls"), builtin_tls=True).start()
    yield server
    server.stop()


def test_an_administrator_calls_the_api_with_their_certificate(tls_app, tmp_path):
    password_file = tmp_path / "pw"
    password_file.write_text("p12 password")
    tls_app.manage("users", "add", "ops", "--admin")
    tls_app.manage("users", "add", "enduser")
    for username in ("ops", "enduser"):
        tls_app.manage("users", "policy", username, "--interface", "https", "--mode", "cert")
    tls_app.manage("certs", "org-ca", "create", "--cn", "API TLS Test CA")
    keys = {}
    for username in ("ops", "enduser"):
        p12 = tmp_path / f"{username}.p12"
        tls_app.manage("certs", "issue", username, "--out", str(p12), "--password-file", str(password_file))
        bundle = pkcs12.load_pkcs12(p12.read_bytes(), b"p12 password")
        pem = tmp_path / f"{username}.pem"
        pem.write_bytes(
            bundle.cert.certificate.public_bytes(serialization.Encoding.PEM)
            + bundle.key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        keys[username] = pem

    def curl_as(username, path, *args):
        command = ["curl", "--silent", "--cacert", str(tls_app.server_certificate), "--cert", str(keys[username])]
        command += ["--write-out", "\n%{http_code}", *args, tls_app.url + path]
        out = subprocess.run(command, capture_output=True, text=True, timeout=30).stdout
        text, _, status = out.rpartition("\n")
        return int(status), text

    status, text = curl_as("ops", "/api/v1/users/")
    assert status == 200 and {u["username"] for u in json.loads(text)["results"]} == {"ops", "enduser"}
    status, text = curl_as("ops", "/api/v1/whoami/")
    assert json.loads(text)["method"] == "certificate"
    status, text = curl_as("enduser", "/api/v1/users/")
    assert status == 403 and json.loads(text)["detail"] == "This is for administrators."
    status, _ = curl_as("enduser", "/api/v1/users/enduser/certificates/")
    assert status == 200
    status, text = curl_as("ops", "/api/v1/users/", "-H", "Content-Type: application/json", "-d", '{"username": "x y"}')
    assert status == 400 and json.loads(text)["errors"][0]["field"] == "username"
