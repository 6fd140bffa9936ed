"""End to end: nginx with ``ssl_crl`` from ``certs export-crls`` in front of the app, and the
built-in HTTPS server, with real client certificates. A revoked certificate is refused by nginx
in the handshake, and by the app itself (the policy "crl, refuse") from the same CRL store: at
the built-in server, a certificate the org CA revoked no longer signs on, from the next request."""

import json
import secrets

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from signon.tls import ensure_server_certificate
from tests.e2e import AppServer, HttpsClient, Nginx
from tests.pki import crl_der, make_client, make_crl, make_intermediate, make_root

pytestmark = pytest.mark.e2e


class CrlNginx(Nginx):
    """The shipped site file, with ``ssl_crl`` as the README says to add it."""

    def config(self) -> str:
        crl_file = self.directory / "crls.pem"
        return (
            super()
            .config()
            .replace(
                f"ssl_client_certificate {self.directory}/client-roots.pem;",
                f"ssl_client_certificate {self.directory}/client-roots.pem;\n    ssl_crl {crl_file};",
            )
        )

    def export_roots(self):
        super().export_roots()
        self.app.manage("certs", "export-crls", str(self.directory / "crls.pem"))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    directory = tmp_path_factory.mktemp("revocation-e2e")
    toot = make_root("Toot")
    chug = make_intermediate("Chug and Ring", toot)
    frank, revoked = make_client("Frank", chug), make_client("Revoked", chug)
    files = {}
    for name, data in {
        "toot.pem": toot.pem,
        "chug.pem": chug.pem,
        "toot.crl": crl_der(make_crl(toot)),
        "chug.crl": crl_der(make_crl(chug, [(revoked.cert, x509.ReasonFlags.key_compromise)])),
    }.items():
        (directory / name).write_bytes(data)
        files[name] = str(directory / name)
    server_cert, server_key, _ = ensure_server_certificate(directory / "server")
    secret = secrets.token_urlsafe(32)
    (directory / "app").mkdir()
    app = AppServer(
        directory / "app",
        unix_socket=True,
        extra_env={"MFT_PROXY_FORMAT": "nginx", "MFT_TRUSTED_PROXIES": "unix", "MFT_PROXY_SECRET": secret},
    )
    nginx = CrlNginx(directory / "nginx", app)
    app.start()
    try:
        app.manage("certs", "roots", "add", files["toot.pem"])
        app.manage("certs", "intermediates", "add", files["chug.pem"])
        app.manage("certs", "crls", "add", files["toot.crl"], files["chug.crl"])
        nginx.start(server_cert, server_key)

        def client(issued):
            key = directory / f"{issued.cert.serial_number}.key"
            key.write_bytes(issued.key_pem)
            chain = directory / f"{issued.cert.serial_number}.pem"
            chain.write_bytes(issued.pem + chug.pem)
            return HttpsClient(nginx.url, cafile=server_cert, cert=str(chain), key=str(key))

        yield app, client, frank, revoked
    finally:
        nginx.stop()
        app.stop()


def test_nginx_refuses_a_revoked_certificate_and_lets_the_others_through(world):
    app, client, frank, revoked = world
    status, body = client(revoked).request("/api/whoami")
    assert status == 400 and "SSL certificate error" in body
    assert client(frank).whoami()["authenticated"] is False  # it connects; nobody has it on a profile


def test_the_crl_file_is_what_export_crls_wrote(world):
    app, *_ = world
    listing = json.loads(app.manage("certs", "crls", "list", "--json").stdout)
    assert sorted(c["issuer"] for c in listing) == ["CN=Chug and Ring", "CN=Toot"]


def test_the_app_reaches_the_same_verdict_from_the_same_store(world, tmp_path):
    app, _, frank, revoked = world
    app.manage("certs", "revocation", "set", "--check", "crl")
    cert = tmp_path / "revoked.pem"
    cert.write_bytes(revoked.pem)
    data = json.loads(app.manage("certs", "check", str(cert), "--json").stdout)
    assert data["category"] == "cannot_connect"
    assert [r["status"] for r in data["connect"]["revocation"]] == ["revoked", "good", "not_checked"]
    assert "(reason: key compromise)" in data["connect"]["reason"]


# --- the built-in HTTPS server ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def builtin(tmp_path_factory):
    data = tmp_path_factory.mktemp("builtin-revocation")
    app = AppServer(data, builtin_tls=True, extra_env={"MFT_PUBLIC_URL": "https://mft.example.com"}).start()
    yield app, data
    app.stop()


def test_the_built_in_server_refuses_a_certificate_once_the_org_ca_revoked_it(builtin):
    app, folder = builtin
    (folder / "pw").write_text("p12 password")
    app.manage("users", "add", "rich", "--full-name", "Rich")
    app.manage("users", "policy", "rich", "--interface", "https", "--mode", "cert")
    app.manage("certs", "org-ca", "create", "--cn", "Revoking Test CA")
    app.manage("certs", "issue", "rich", "--out", str(folder / "rich.p12"), "--password-file", str(folder / "pw"))
    bundle = pkcs12.load_pkcs12((folder / "rich.p12").read_bytes(), b"p12 password")
    cert, key = folder / "rich.pem", folder / "rich.key"
    cert.write_bytes(bundle.cert.certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        bundle.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    client = HttpsClient(app.url, cafile=app.server_certificate, cert=cert, key=key)
    app.manage("certs", "revocation", "set", "--check", "crl")
    assert client.whoami()["username"] == "rich"  # checked, and not revoked

    thumbprint = json.loads(app.manage("certs", "user", "rich", "list", "--json").stdout)[0]["value"]
    app.manage("certs", "revoke", "rich", thumbprint, "--reason", "key-compromise")
    # Put back on the profile, it still signs nobody on: it is on the org CA's CRL.
    app.manage("certs", "user", "rich", "add-thumbprint", thumbprint)
    fresh = HttpsClient(app.url, cafile=app.server_certificate, cert=cert, key=key)
    assert fresh.whoami()["authenticated"] is False
    refused = json.loads(app.manage("audit", "list", "--json", "--action", "signon.refused").stdout)
    assert any("was revoked on" in json.dumps(event) for event in refused)
