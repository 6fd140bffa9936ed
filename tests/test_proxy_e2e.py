"""End to end: a real nginx terminating TLS in front of a real gunicorn, real client certificates.

nginx runs the site file the project ships (deploy/nginx/) and reaches gunicorn, started with
the shipped configuration (mft/gunicorn_proxy.py), over the app's unix socket with the shared
proxy secret, as the README documents. The tests administer the app through manage.py and
sign on over HTTPS like any client; the attacks come straight at gunicorn, as a local process.
"""

import http.client
import json
import secrets
from urllib.parse import quote

import pytest
from cryptography import x509

from signon.tls import ensure_server_certificate
from tests.e2e import AppServer, HttpsClient, Nginx
from tests.pki import DAY, NOW, make_client, make_intermediate, make_root

pytestmark = pytest.mark.e2e

PASSWORD = "a long user passphrase"


class World:
    """Certificates, files and the running processes shared by the tests of this module."""

    def __init__(self, directory):
        self.dir = directory
        self.toot = make_root("Toot")
        self.chug = make_intermediate("Chug and Ring", self.toot)
        self.frank = make_client("Frank", self.chug)
        self.stranger = make_client("Frank", make_root("Elsewhere Root"))
        self.expired = make_client("Frank", self.chug, not_before=NOW - 10 * DAY, not_after=NOW - DAY)
        self.server_cert, self.server_key, _ = ensure_server_certificate(directory / "server")
        self.password_file = directory / "password"
        self.password_file.write_text(PASSWORD)

    def pem_file(self, name, *issued) -> str:
        path = self.dir / f"{name}.pem"
        path.write_bytes(b"".join(i.pem for i in issued))
        return str(path)

    def client_files(self, name, issued, *chain):
        """A certificate file (the client's certificate, then its chain) and its key file."""
        key = self.dir / f"{name}.key"
        key.write_bytes(issued.key_pem)
        return self.pem_file(f"{name}-chain", issued, *chain), str(key)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    world = World(tmp_path_factory.mktemp("proxy-e2e"))
    world.secret = secrets.token_urlsafe(32)
    (world.dir / "app").mkdir()
    world.app = AppServer(
        world.dir / "app",
        unix_socket=True,
        extra_env={"MFT_PROXY_FORMAT": "nginx", "MFT_TRUSTED_PROXIES": "unix", "MFT_PROXY_SECRET": world.secret},
    )
    world.nginx = Nginx(world.dir / "nginx", world.app)
    world.app.start()
    try:
        world.app.manage("certs", "roots", "add", world.pem_file("toot", world.toot))
        # A second root, so that removing Toot leaves a bundle nginx can load (it refuses an empty one).
        world.app.manage("certs", "roots", "add", world.pem_file("spare", make_root("Spare Root")))
        world.app.manage("certs", "intermediates", "add", world.pem_file("chug", world.chug))
        world.nginx.start(world.server_cert, world.server_key)
        yield world
    finally:
        world.nginx.stop()
        world.app.stop()


@pytest.fixture
def app(world):
    """A clean slate of users and settings for each test (the trusted roots stay)."""
    world.app.python(
        "from users.models import User; from audit.models import AuditEvent; "
        "from certs.models import StoreEntry, TankEntry, TrustSettings; "
        "User.objects.all().delete(); AuditEvent.objects.all().delete(); TankEntry.objects.all().delete(); "
        "StoreEntry.objects.filter(store='approved').delete(); TrustSettings.objects.update(match_cn=False); "
        "TrustSettings.bump()"
    )
    return world.app


def user(app, world, username, mode, full_name=""):
    args = ["users", "add", username, "--password-file", str(world.password_file)]
    if full_name:
        args += ["--full-name", full_name]
    app.manage(*args)
    app.manage("users", "policy", username, "--interface", "https", "--mode", mode)


def client(world, issued=None, *chain, name="client"):
    if issued is None:
        return HttpsClient(world.nginx.url, cafile=world.server_cert)
    cert, key = world.client_files(name, issued, *chain)
    return HttpsClient(world.nginx.url, cafile=world.server_cert, cert=cert, key=key)


def audit(app, action):
    code = (
        "import json; from audit.models import AuditEvent; "
        f"print(json.dumps([e.detail | {{'summary': e.summary, 'source': e.source_address}} "
        f"for e in AuditEvent.objects.filter(action={action!r})]))"
    )
    return json.loads(app.python(code))


# --- the specification's categories for Frank -----------------------------------------------


def test_a_certificate_that_chains_to_nothing_installed_cannot_connect(world, app):
    status, body = client(world, world.stranger).request("/api/whoami")
    assert status == 400  # nginx itself refuses it
    assert "SSL certificate error" in body


def test_an_expired_certificate_cannot_connect(world, app):
    status, body = client(world, world.expired, world.chug).request("/api/whoami")
    assert status == 400
    assert "SSL certificate error" in body


def test_frank_connects_but_authenticates_nobody_and_lands_in_the_org_tank(world, app):
    assert not client(world, world.frank, world.chug).whoami()["authenticated"]
    tank = json.loads(app.manage("certs", "tank", "list", "--json").stdout)
    assert [(t["user"], t["kind"]) for t in tank] == [(None, "certificate")]
    assert tank[0]["source_address"] == "127.0.0.1"  # the client's address, not the proxy's


def test_frank_authenticates_by_thumbprint(world, app):
    user(app, world, "rich", "cert", "Rich")
    app.manage("certs", "user", "rich", "import", world.pem_file("frank", world.frank))
    assert client(world, world.frank, world.chug).whoami() == {
        "authenticated": True,
        "username": "rich",
        "method": "certificate",
        "rule": "thumbprint",
    }


def test_frank_authenticates_by_cn_once_chug_and_ring_is_approved(world, app):
    user(app, world, "rich", "cert", "Rich")
    app.manage("certs", "user", "rich", "add-cn", "Frank")
    assert not client(world, world.frank, world.chug).whoami()["authenticated"]
    app.manage("certs", "cas", "add", world.pem_file("chug", world.chug))
    assert client(world, world.frank, world.chug).whoami()["rule"] == "cn"


def test_frank_authenticates_user_frank_by_match_cn(world, app):
    user(app, world, "frank", "cert")
    app.manage("certs", "cas", "add", world.pem_file("chug", world.chug))
    assert not client(world, world.frank, world.chug).whoami()["authenticated"]
    app.manage("certs", "match-cn", "on")
    assert client(world, world.frank, world.chug).whoami() == {
        "authenticated": True,
        "username": "frank",
        "method": "certificate",
        "rule": "match_cn",
    }


# --- the modes -------------------------------------------------------------------------------


def sign_in(browser, username, password=""):
    return browser.post_form("/accounts/login/", {"username": username, "password": password})


def test_mode_cert_or_password_takes_either(world, app):
    user(app, world, "rich", "cert-or-password", "Rich")
    app.manage("certs", "user", "rich", "import", world.pem_file("frank", world.frank))
    assert client(world, world.frank, world.chug).whoami()["method"] == "certificate"
    browser = client(world)
    sign_in(browser, "rich", PASSWORD)
    assert browser.whoami()["method"] == "password"


def test_mode_cert_refuses_the_password_alone(world, app):
    user(app, world, "rich", "cert", "Rich")
    browser = client(world)
    status, page = sign_in(browser, "rich", PASSWORD)
    assert "Sign-on failed." in page
    assert not browser.whoami()["authenticated"]


def test_mode_cert_and_password_needs_both(world, app):
    user(app, world, "rich", "cert-and-password", "Rich")
    app.manage("certs", "user", "rich", "import", world.pem_file("frank", world.frank))
    with_cert = client(world, world.frank, world.chug)
    assert not with_cert.whoami()["authenticated"]
    status, page = with_cert.request("/accounts/login/")
    assert "Enter your password as well to finish signing on." in page
    sign_in(with_cert, "rich", PASSWORD)
    assert with_cert.whoami()["method"] == "certificate+password"
    password_only = client(world)
    sign_in(password_only, "rich", PASSWORD)
    assert not password_only.whoami()["authenticated"]


def test_mode_password_ignores_certificates(world, app):
    user(app, world, "rich", "password", "Rich")
    app.manage("certs", "user", "rich", "import", world.pem_file("frank", world.frank))
    assert not client(world, world.frank, world.chug).whoami()["authenticated"]


# --- sessions and forged headers ---------------------------------------------------------------


def test_removing_the_thumbprint_ends_the_session(world, app):
    user(app, world, "rich", "cert", "Rich")
    app.manage("certs", "user", "rich", "import", world.pem_file("frank", world.frank))
    browser = client(world, world.frank, world.chug)
    browser.request("/")  # a page: the browser gets its session (the API keeps none)
    assert browser.whoami()["authenticated"]
    assert browser.cookie("sessionid")
    (entry,) = json.loads(app.manage("certs", "user", "rich", "list", "--json").stdout)
    app.manage("certs", "user", "rich", "remove", str(entry["id"]))
    assert not browser.whoami()["authenticated"]


def forged(issued) -> dict:
    return {"X-SSL-Client-Cert": quote(issued.pem.decode(), safe=""), "X-SSL-Client-Verify": "SUCCESS"}


def test_a_forged_header_sent_straight_to_the_apps_socket_is_ignored(world, app):
    """A local process that may open the socket, but does not know the proxy's secret."""
    user(app, world, "alice", "cert", "Alice Admin")
    app.manage("certs", "user", "alice", "import", world.pem_file("frank", world.frank))
    status, body = app.over_socket("GET", "/api/whoami", forged(world.frank))
    assert status == 200 and json.loads(body)["authenticated"] is False
    status, body = app.over_socket("GET", "/api/whoami", {**forged(world.frank), "X-MFT-Proxy-Secret": "guess"})
    assert json.loads(body)["authenticated"] is False
    summaries = [e["summary"] for e in audit(app, "signon.untrusted_header")]
    assert any("without the proxy secret" in summary for summary in summaries), summaries


def test_the_apps_socket_is_closed_to_other_users(world):
    assert world.app.socket.stat().st_mode & 0o007 == 0


def test_a_forged_client_address_does_not_reach_the_audit_log(world, app):
    unknown = make_client("Somebody New", world.chug)
    client(world, unknown, world.chug, name="new").request("/api/whoami", headers={"X-Forwarded-For": "203.0.113.9"})
    tank = json.loads(app.manage("certs", "tank", "list", "--json").stdout)
    assert [t["source_address"] for t in tank] == ["127.0.0.1"]


def test_a_client_cannot_forge_the_header_through_nginx_either(world, app):
    user(app, world, "rich", "cert", "Rich")
    app.manage("certs", "user", "rich", "import", world.pem_file("frank", world.frank))
    status, body = client(world).request("/api/whoami", headers=forged(world.frank))
    assert json.loads(body)["authenticated"] is False  # nginx replaced it with the (empty) real one


def test_a_certificate_of_post_quantum_size_signs_on_through_nginx(world, app):
    """Some 8 KB of certificate: more than gunicorn's default header limit once escaped."""
    big = make_client("Frank", world.chug, extensions=[(bulky_extension(8000), False)])
    assert len(big.der) > 8000
    user(app, world, "rich", "cert", "Rich")
    app.manage("certs", "user", "rich", "import", world.pem_file("big", big))
    assert client(world, big, world.chug, name="big").whoami()["username"] == "rich"


def bulky_extension(size: int) -> x509.UnrecognizedExtension:
    return x509.UnrecognizedExtension(
        x509.ObjectIdentifier("1.3.6.1.4.1.55555.1"), b"\x04\x82" + size.to_bytes(2) + b"x" * size
    )


def test_the_root_store_change_reaches_nginx_with_a_reload(world, app):
    user(app, world, "rich", "cert", "Rich")
    app.manage("certs", "user", "rich", "import", world.pem_file("frank", world.frank))
    browser = client(world, world.frank, world.chug)
    assert browser.whoami()["authenticated"]
    roots = json.loads(app.manage("certs", "roots", "list", "--json").stdout)
    thumbprint = next(r["thumbprint"] for r in roots if r["subject"] == "CN=Toot")
    app.manage("certs", "roots", "remove", thumbprint)
    try:
        # The app refuses at once, before the proxy is even reloaded.
        assert not client(world, world.frank, world.chug).whoami()["authenticated"]
        world.nginx.reload()
        status, _ = client(world, world.frank, world.chug).request("/api/whoami")
        assert status == 400
    finally:
        app.manage("certs", "roots", "add", world.pem_file("toot", world.toot))
        world.nginx.reload()


# --- the optional_no_ca variant: nginx forwards what it could not verify ---------------------


@pytest.fixture(scope="module")
def lenient_nginx(world):
    nginx = Nginx(world.dir / "nginx-no-ca", world.app, site="mft-optional-no-ca.conf")
    nginx.start(world.server_cert, world.server_key)
    yield nginx
    nginx.stop()


def test_with_optional_no_ca_the_proxys_failure_is_final(world, app, lenient_nginx):
    user(app, world, "rich", "cert", "Rich")
    app.manage("certs", "user", "rich", "import", world.pem_file("stranger", world.stranger))
    cert, key = world.client_files("stranger", world.stranger)
    browser = HttpsClient(lenient_nginx.url, cafile=world.server_cert, cert=cert, key=key)
    assert not browser.whoami()["authenticated"]
    (event,) = audit(app, "signon.refused")
    assert any(r.startswith("The front proxy refused the certificate: FAILED:") for r in event["reasons"])


# --- the attacks the proxy settings close -------------------------------------------------------


@pytest.fixture(scope="module")
def tcp_app(world):
    """The app on TCP with the default MFT_TRUSTED_PROXIES (exact loopback addresses), no secret."""
    server = AppServer(world.dir / "tcp-app", extra_env={"MFT_PROXY_FORMAT": "nginx"})
    (world.dir / "tcp-app").mkdir()
    server.start()
    server.manage("certs", "roots", "add", world.pem_file("toot", world.toot))
    server.manage("certs", "intermediates", "add", world.pem_file("chug", world.chug))
    user(server, world, "alice", "cert", "Alice Admin")
    server.manage("certs", "user", "alice", "import", world.pem_file("frank", world.frank))
    yield server
    server.stop()


def straight_to(server, source: str, headers: dict) -> dict:
    connection = http.client.HTTPConnection(server.host, server.port, timeout=10, source_address=(source, 0))
    try:
        connection.request("GET", "/api/whoami", headers={"Host": "localhost", **headers})
        return json.loads(connection.getresponse().read())
    finally:
        connection.close()


def test_any_other_loopback_address_is_not_the_proxy(world, tcp_app):
    """A local process binding 127.0.0.2 once signed on as anyone, admins included."""
    assert straight_to(tcp_app, "127.0.0.2", forged(world.frank))["authenticated"] is False
    assert straight_to(tcp_app, "127.0.0.1", forged(world.frank))["username"] == "alice"  # the trusted address


def test_with_a_secret_even_the_trusted_address_must_prove_itself(world):
    secret = secrets.token_urlsafe(32)
    server = AppServer(world.dir / "secret-app", extra_env={"MFT_PROXY_FORMAT": "nginx", "MFT_PROXY_SECRET": secret})
    (world.dir / "secret-app").mkdir()
    server.start()
    try:
        server.manage("certs", "roots", "add", world.pem_file("toot", world.toot))
        server.manage("certs", "intermediates", "add", world.pem_file("chug", world.chug))
        user(server, world, "alice", "cert", "Alice Admin")
        server.manage("certs", "user", "alice", "import", world.pem_file("frank", world.frank))
        assert straight_to(server, "127.0.0.1", forged(world.frank))["authenticated"] is False
        assert (
            straight_to(server, "127.0.0.1", {**forged(world.frank), "X-MFT-Proxy-Secret": secret + "x"})[
                "authenticated"
            ]
            is False
        )
        proven = straight_to(server, "127.0.0.1", {**forged(world.frank), "X-MFT-Proxy-Secret": secret})
        assert proven["username"] == "alice"
    finally:
        server.stop()


def test_nginx_removes_the_headers_of_every_other_format(world):
    """An app set to the wrong format (envoy here) behind the shipped nginx site reads nothing a
    client sent in that format's header."""
    (world.dir / "envoy-app").mkdir()
    server = AppServer(
        world.dir / "envoy-app",
        unix_socket=True,
        extra_env={"MFT_PROXY_FORMAT": "envoy", "MFT_TRUSTED_PROXIES": "unix", "MFT_PROXY_SECRET": world.secret},
    )
    server.start()
    nginx = Nginx(world.dir / "nginx-envoy", server)
    try:
        server.manage("certs", "roots", "add", world.pem_file("toot", world.toot))
        server.manage("certs", "intermediates", "add", world.pem_file("chug", world.chug))
        user(server, world, "alice", "cert", "Alice Admin")
        server.manage("certs", "user", "alice", "import", world.pem_file("frank", world.frank))
        nginx.start(world.server_cert, world.server_key)
        xfcc = f'Cert="{quote(world.frank.pem.decode(), safe="")}"'
        browser = HttpsClient(nginx.url, cafile=world.server_cert)
        status, body = browser.request("/api/whoami", headers={"X-Forwarded-Client-Cert": xfcc})
        assert status == 200 and json.loads(body)["authenticated"] is False
        # The same header straight to the socket with the secret is read: only nginx stood in the way.
        status, body = server.over_socket(
            "GET", "/api/whoami", {"X-Forwarded-Client-Cert": xfcc, "X-MFT-Proxy-Secret": world.secret}
        )
        assert json.loads(body)["username"] == "alice"
    finally:
        nginx.stop()
        server.stop()
