"""The forward-auth gate in front of another service: real nginx (the shipped auth_request site)
serves a protected folder only to those the app signs on, with their certificate."""

import base64
import json
import secrets
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from signon.tls import ensure_server_certificate
from tests.e2e import AppServer, HttpsClient, Nginx
from tests.ftps_support import client_files
from tests.pki import make_client, make_intermediate, make_root

pytestmark = pytest.mark.e2e

PASSWORD = "a long user passphrase"


class ProtectingNginx(Nginx):
    def __init__(self, directory, app, folder):
        super().__init__(directory, app, site="forward-auth.conf")
        self.folder = folder

    def config(self) -> str:
        return super().config().replace("root /srv/protected;", f"root {self.folder};")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    directory = tmp_path_factory.mktemp("gate-e2e")
    world = type("World", (), {})()
    world.dir = directory
    world.root = make_root("Toot")
    world.ca = make_intermediate("Chug and Ring", world.root)
    world.frank = make_client("Frank", world.ca)
    world.dick = make_client("Dick", world.ca)
    world.stranger = make_client("Frank", make_root("Elsewhere Root"))
    # nginx's workers drop privileges: the folder they serve must be readable by anyone.
    folder = Path(tempfile.mkdtemp(prefix="mft-protected-"))
    folder.chmod(0o755)
    (folder / "report.txt").write_text("quarterly figures\n")
    (folder / "report.txt").chmod(0o644)
    server_cert, server_key, _ = ensure_server_certificate(directory / "server")
    world.server_cert = server_cert
    (directory / "app").mkdir()
    world.app = AppServer(
        directory / "app",
        unix_socket=True,
        extra_env={
            "MFT_PROXY_FORMAT": "nginx",
            "MFT_TRUSTED_PROXIES": "unix",
            "MFT_PROXY_SECRET": secrets.token_urlsafe(32),
        },
    )
    world.app.start()
    world.nginx = ProtectingNginx(directory / "nginx", world.app, folder)
    try:
        for name, issued in (("root", world.root), ("ca", world.ca), ("frank", world.frank)):
            (directory / f"{name}.pem").write_bytes(issued.pem)
        (directory / "pw").write_text(PASSWORD)
        app = world.app
        app.manage("certs", "roots", "add", str(directory / "root.pem"))
        app.manage("certs", "intermediates", "add", str(directory / "ca.pem"))
        app.manage("users", "add", "rich", "--full-name", "Rich", "--password-file", str(directory / "pw"))
        app.manage("users", "policy", "rich", "--interface", "https", "--mode", "cert")
        app.manage("certs", "user", "rich", "import", str(directory / "frank.pem"))
        world.nginx.start(server_cert, server_key)
        yield world
    finally:
        world.nginx.stop()
        world.app.stop()
        shutil.rmtree(folder, ignore_errors=True)


def fetch(world, issued=None, chain=(), headers=None):
    cert = key = None
    if issued is not None:
        cert, key = client_files(world.dir, issued, *chain)
    client = HttpsClient(world.nginx.url, cafile=world.server_cert, cert=cert, key=key)
    request = urllib.request.Request(world.nginx.url + "/report.txt", headers=headers or {})
    try:
        with client.opener.open(request, timeout=20) as response:
            return response.status, response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), dict(error.headers)


def test_the_right_certificate_gets_the_file_and_is_named(world):
    status, body, headers = fetch(world, world.frank, [world.ca])
    assert (status, body) == (200, "quarterly figures\n")
    assert headers["X-MFT-User"] == "rich"


def test_no_certificate_is_asked_for_credentials(world):
    status, body, headers = fetch(world)
    assert status == 401 and "quarterly" not in body
    assert headers["WWW-Authenticate"].startswith("Basic")


def test_a_certificate_that_authenticates_nobody_is_forbidden(world):
    status, body, _ = fetch(world, world.dick, [world.ca])
    assert status == 403 and "quarterly" not in body


def test_a_certificate_nginx_cannot_verify_never_reaches_the_file(world):
    status, body, _ = fetch(world, world.stranger)
    assert status == 400 and "quarterly" not in body


def test_cert_and_password_needs_the_password_in_basic_credentials(world):
    world.app.manage("users", "policy", "rich", "--interface", "https", "--mode", "cert-and-password")
    try:
        assert fetch(world, world.frank, [world.ca])[0] == 401
        credentials = base64.b64encode(f"rich:{PASSWORD}".encode()).decode()
        status, body, _ = fetch(world, world.frank, [world.ca], {"Authorization": f"Basic {credentials}"})
        assert (status, body) == (200, "quarterly figures\n")
    finally:
        world.app.manage("users", "policy", "rich", "--interface", "https", "--mode", "cert")


def test_a_thumbprint_removed_is_refused_at_the_next_request(world):
    assert fetch(world, world.frank, [world.ca])[0] == 200
    (entry,) = json.loads(world.app.manage("certs", "user", "rich", "list", "--json").stdout)
    world.app.manage("certs", "user", "rich", "remove", str(entry["id"]))
    try:
        assert fetch(world, world.frank, [world.ca])[0] == 403
    finally:
        world.app.manage("certs", "user", "rich", "import", str(world.dir / "frank.pem"))
