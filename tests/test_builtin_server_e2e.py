"""End to end: the built-in HTTPS server that the README's run command starts.

gunicorn terminates TLS itself, asks for a client certificate and trusts the current root
store. A user signs on with a certificate made by the app's own org CA, with Python's TLS
client and with curl; a change to the root store takes effect without a restart.
"""

import base64
import json
import shutil
import socket
import subprocess
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from cryptography.x509.oid import NameOID

from tests.e2e import AppServer, HttpsClient, require
from tests.pki import DAY, NOW, make_client, make_intermediate, make_root

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("builtin")
    app = AppServer(data, builtin_tls=True, extra_env={"MFT_TLS_HANDSHAKE_SECONDS": "2"}).start()
    yield app
    app.stop()


@pytest.fixture(scope="module")
def issued(server, tmp_path_factory):
    """A certificate for rich (HTTPS mode: certificate only) from the app's own "create new"."""
    folder = tmp_path_factory.mktemp("issued")
    password_file = folder / "pw"
    password_file.write_text("p12 password")
    server.manage("users", "add", "rich", "--full-name", "Rich")
    server.manage("users", "policy", "rich", "--interface", "https", "--mode", "cert")
    server.manage("certs", "org-ca", "create", "--cn", "Built-in Test CA")
    server.manage("certs", "issue", "rich", "--out", str(folder / "rich.p12"), "--password-file", str(password_file))
    bundle = pkcs12.load_pkcs12((folder / "rich.p12").read_bytes(), b"p12 password")
    cert, key = folder / "rich.pem", folder / "rich.key"
    cert.write_bytes(bundle.cert.certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        bundle.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert, key, folder / "rich.p12"


def test_without_a_certificate_nobody_is_signed_on(server):
    client = HttpsClient(server.url, cafile=server.server_certificate)
    assert client.whoami() == {"authenticated": False, "username": None, "method": None, "rule": None}


def test_a_certificate_from_create_new_signs_on(server, issued):
    cert, key, _ = issued
    client = HttpsClient(server.url, cafile=server.server_certificate, cert=cert, key=key)
    assert client.whoami() == {"authenticated": True, "username": "rich", "method": "certificate", "rule": "thumbprint"}
    status, page = client.request("/")
    assert "You are signed on as <strong>rich</strong> (Rich)." in page


def test_curl_signs_on_with_the_pkcs12_file(server, issued):
    curl = require("curl", shutil.which("curl"), "apt-get install curl")
    _, _, p12 = issued
    result = subprocess.run(
        [
            curl,
            "--silent",
            "--show-error",
            "--cacert",
            str(server.server_certificate),
            "--cert-type",
            "P12",
            "--cert",
            f"{p12}:p12 password",
            f"{server.url}/api/whoami",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["username"] == "rich"


def test_a_root_store_change_takes_effect_without_a_restart(server, issued):
    cert, key, _ = issued
    org_ca = json.loads(server.manage("certs", "org-ca", "show", "--json").stdout)
    server.manage("certs", "roots", "remove", org_ca["thumbprint"])
    try:
        time.sleep(1.5)  # each worker looks at the trust configuration at most once a second
        client = HttpsClient(server.url, cafile=server.server_certificate, cert=cert, key=key)
        assert client.whoami()["authenticated"] is False  # judged by the app: it cannot connect now
    finally:
        server.python(
            "from certs import flows; from certs.models import OrgCA, Store; "
            "flows.add_to_store(Store.ROOT, [OrgCA.active().certificate.to_x509()], 'test suite')"
        )
    time.sleep(1.5)
    client = HttpsClient(server.url, cafile=server.server_certificate, cert=cert, key=key)
    assert client.whoami()["username"] == "rich"


def test_the_chain_the_client_sends_reaches_the_app(server, tmp_path):
    root = make_root("Chain Root")
    ca = make_intermediate("Chain CA", root)  # in neither store: only the client sends it
    leaf = make_client("Chained", ca)
    (tmp_path / "root.pem").write_bytes(root.pem)
    (tmp_path / "leaf.pem").write_bytes(leaf.pem)
    (tmp_path / "chain.pem").write_bytes(leaf.pem + ca.pem)
    (tmp_path / "leaf.key").write_bytes(leaf.key_pem)
    server.manage("users", "add", "chained", "--full-name", "Chained User")
    server.manage("users", "policy", "chained", "--interface", "https", "--mode", "cert")
    server.manage("certs", "user", "chained", "import", str(tmp_path / "leaf.pem"))
    server.manage("certs", "roots", "add", str(tmp_path / "root.pem"))
    time.sleep(1.5)  # the TLS context notices the new root
    client = HttpsClient(
        server.url, cafile=server.server_certificate, cert=tmp_path / "chain.pem", key=tmp_path / "leaf.key"
    )
    assert client.whoami()["username"] == "chained"


def test_a_renewal_presented_over_https_is_accepted_with_replace_and_the_old_one_stops(server, tmp_path):
    root = make_root("Renewal Root")
    ca = make_intermediate("Renewal CA", root)
    old = make_client("Renewing Partner", ca, not_after=NOW + 9 * DAY)
    renewal = make_client("Renewing Partner", ca, not_after=NOW + 400 * DAY)
    (tmp_path / "root.pem").write_bytes(root.pem)
    for name, issued in (("old", old), ("new", renewal)):
        (tmp_path / f"{name}.pem").write_bytes(issued.pem + ca.pem)
        (tmp_path / f"{name}.key").write_bytes(issued.key_pem)
    server.manage("users", "add", "partner")
    server.manage("users", "policy", "partner", "--interface", "https", "--mode", "cert")
    server.manage("certs", "user", "partner", "import", str(tmp_path / "old.pem"))
    server.manage("certs", "roots", "add", str(tmp_path / "root.pem"))
    time.sleep(1.5)  # the TLS context notices the new root

    def whoami(name):
        client = HttpsClient(
            server.url, cafile=server.server_certificate, cert=tmp_path / f"{name}.pem", key=tmp_path / f"{name}.key"
        )
        return client.whoami()["username"]

    assert whoami("old") == "partner"
    assert whoami("new") is None
    tank = json.loads(server.manage("certs", "tank", "list", "--json", "--org").stdout)
    (entry,) = [e for e in tank if e["renewal_of"]]
    assert entry["renewal_of"]["username"] == "partner" and entry["interface"] == "https"
    server.manage("certs", "tank", "accept", str(entry["id"]), "--replace", "--keep-old-days", "0")
    assert whoami("new") == "partner"
    assert whoami("old") is None


def test_est_reenrolment_with_curl_and_the_current_certificate(server, issued, tmp_path):
    # ``issued`` made the org CA ("Built-in Test CA").
    curl = require("curl", shutil.which("curl"), "apt-get install curl")
    password_file = tmp_path / "pw"
    password_file.write_text("p12 password")
    server.manage("users", "add", "estuser")
    server.manage("users", "policy", "estuser", "--interface", "https", "--mode", "cert")
    server.manage("certs", "self-renewal", "automatic")
    out = tmp_path / "est.p12"
    server.manage("certs", "issue", "estuser", "--days", "20", "--out", str(out), "--password-file", str(password_file))
    bundle = pkcs12.load_pkcs12(out.read_bytes(), b"p12 password")
    (tmp_path / "cur.pem").write_bytes(bundle.cert.certificate.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "cur.key").write_bytes(
        bundle.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    new_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ignored")])
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(new_key, hashes.SHA256())
    (tmp_path / "req.b64").write_bytes(base64.encodebytes(csr.public_bytes(serialization.Encoding.DER)))
    common = [curl, "--silent", "--show-error", "--cacert", str(server.server_certificate)]
    cacerts = subprocess.run(
        [*common, f"{server.url}/.well-known/est/cacerts"], capture_output=True, check=True, timeout=30
    )
    assert pkcs7.load_der_pkcs7_certificates(base64.b64decode(cacerts.stdout))[0].subject.rfc4514_string() == (
        "CN=Built-in Test CA"
    )
    done = subprocess.run(
        [
            *common,
            "--cert", str(tmp_path / "cur.pem"), "--key", str(tmp_path / "cur.key"),
            "-H", "Content-Type: application/pkcs10", "--data-binary", f"@{tmp_path / 'req.b64'}",
            "--write-out", "\n%{http_code}",
            f"{server.url}/.well-known/est/simplereenroll",
        ],
        capture_output=True, check=True, timeout=30,
    )  # fmt: skip
    body, _, status = done.stdout.rpartition(b"\n")
    assert status == b"200", done.stdout
    (new,) = pkcs7.load_der_pkcs7_certificates(base64.b64decode(body))
    assert new.subject.rfc4514_string() == "CN=estuser" and new.public_key() == new_key.public_key()
    refused = subprocess.run(
        [*common, "-H", "Content-Type: application/pkcs10", "--data-binary", f"@{tmp_path / 'req.b64'}",
         f"{server.url}/.well-known/est/simplereenroll"],
        capture_output=True, check=True, timeout=30,
    )  # fmt: skip
    assert b"present it" in refused.stdout


def test_idle_connections_do_not_starve_the_server(server):
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(6)]
    try:
        started = time.monotonic()
        assert HttpsClient(server.url, cafile=server.server_certificate).whoami()["authenticated"] is False
        assert time.monotonic() - started < 5
    finally:
        for connection in idle:
            connection.close()


def test_a_forwarded_for_header_is_not_believed(server):
    client = HttpsClient(server.url, cafile=server.server_certificate)
    client.request("/accounts/login/")
    status, _ = client.post_form(
        "/accounts/login/",
        {"username": "nobody", "password": "wrong password"},
        extra_headers={"X-Forwarded-For": "203.0.113.1", "X-Forwarded-Proto": "https"},
    )
    assert status == 200
    addresses = json.loads(
        server.python(
            "import json; from audit.models import AuditEvent; "
            "events = AuditEvent.objects.filter(action='signon.refused'); "
            "print(json.dumps(list(events.values_list('source_address', flat=True))))"
        )
    )
    assert addresses and set(addresses) == {"127.0.0.1"}


def test_half_open_handshakes_do_not_stall_the_server(server):
    """Each connection sends the first 5 bytes of a TLS record and falls silent: once they held
    every worker thread until they closed, and /healthz went unanswered."""
    stalled = []
    try:
        for _ in range(20):
            connection = socket.create_connection(("127.0.0.1", server.port))
            connection.sendall(b"\x16\x03\x01\x02\x00")
            stalled.append(connection)
        time.sleep(3)  # the server has taken them all up by now
        started = time.monotonic()
        status, _ = HttpsClient(server.url, cafile=server.server_certificate).request("/healthz")
        assert status == 200
        assert time.monotonic() - started < 2 + 4  # the handshake deadline, and some slack
    finally:
        for connection in stalled:
            connection.close()


def test_a_root_whose_name_looks_like_a_certificate_keeps_the_server_online(server, issued, tmp_path):
    """A subject holding "-----BEGIN CERTIFICATE-----" once broke the bundle and every handshake."""
    trap = make_root("-----BEGIN CERTIFICATE-----\nMIIB-----END CERTIFICATE-----")
    (tmp_path / "trap.pem").write_bytes(trap.pem)
    server.manage("certs", "roots", "add", str(tmp_path / "trap.pem"))
    time.sleep(1.5)
    cert, key, _ = issued
    client = HttpsClient(server.url, cafile=server.server_certificate, cert=cert, key=key)
    assert client.whoami()["username"] == "rich"
    bundle = server.manage("certs", "export-roots", "-").stdout
    assert bundle.count("-----BEGIN CERTIFICATE-----") == len(
        json.loads(server.manage("certs", "roots", "list", "--json").stdout)
    )


def test_a_certificate_that_cannot_connect_is_judged_and_counted_never_signed_on(server, tmp_path):
    """Once refused at the handshake, it never reached the app: the sign-on overview's "cannot
    connect" stayed at 0 however many such attempts there were."""
    outsider = make_client("Outsider", make_root("Nobody's Root"))
    (tmp_path / "outsider.pem").write_bytes(outsider.pem)
    (tmp_path / "outsider.key").write_bytes(outsider.key_pem)
    client = HttpsClient(
        server.url, cafile=server.server_certificate, cert=tmp_path / "outsider.pem", key=tmp_path / "outsider.key"
    )
    assert client.whoami()["authenticated"] is False
    counted = server.python("from certs import reports; print(reports.overview(1).count('cannot_connect'))")
    assert int(counted.strip()) >= 1
