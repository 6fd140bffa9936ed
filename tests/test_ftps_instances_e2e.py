"""Two FTPS server processes on one database (PostgreSQL when DATABASE_URL names one): a change
made through the command line applies at the next sign-on at both, with no restart."""

import ftplib
import json

import pytest

from tests.e2e import AppServer
from tests.ftps_support import PASSWORD, FtpsServer, refused
from tests.pki import make_client, make_intermediate, make_root

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    directory = tmp_path_factory.mktemp("ftps-instances")
    app = AppServer(directory)
    app.manage("migrate", "--noinput", "-v0")
    first = FtpsServer(app, name="first").start()
    second = FtpsServer(app, name="second").start()
    yield app, first, second
    second.stop()
    first.stop()
    app.database.drop()


def signs_on(server, issued, chain, password=""):
    try:
        server.sign_on("rich", password, issued, chain).quit()
        return True
    except ftplib.error_perm as error:
        assert refused(error), error
        return False


def test_both_processes_see_every_change_at_the_next_sign_on(servers, tmp_path):
    app, first, second = servers
    root = make_root("Cluster Root")
    ca = make_intermediate("Cluster CA", root)
    frank = make_client("Frank", ca)
    for name, issued in (("root", root), ("ca", ca), ("frank", frank)):
        (tmp_path / f"{name}.pem").write_bytes(issued.pem)
    (tmp_path / "pw").write_text(PASSWORD)
    app.manage("users", "add", "rich", "--full-name", "Rich", "--password-file", str(tmp_path / "pw"))
    app.manage("users", "policy", "rich", "--interface", "ftps", "--mode", "cert")
    app.manage("certs", "roots", "add", str(tmp_path / "root.pem"))
    app.manage("certs", "intermediates", "add", str(tmp_path / "ca.pem"))
    assert not signs_on(first, frank, [ca]) and not signs_on(second, frank, [ca])

    app.manage("certs", "user", "rich", "import", str(tmp_path / "frank.pem"))
    assert signs_on(first, frank, [ca]) and signs_on(second, frank, [ca])

    (entry,) = json.loads(app.manage("certs", "user", "rich", "list", "--json").stdout)
    app.manage("certs", "user", "rich", "remove", str(entry["id"]))
    assert not signs_on(first, frank, [ca]) and not signs_on(second, frank, [ca])

    app.manage("users", "policy", "rich", "--interface", "ftps", "--mode", "password")
    assert signs_on(first, None, (), PASSWORD) and signs_on(second, None, (), PASSWORD)
