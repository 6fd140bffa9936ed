"""FTPS end to end: ``manage.py ftpserver`` in its own process, real clients (ftplib, curl, lftp).

The server judges certificates with the same engine and records sign-ons with the same code
as HTTPS; the tests administer it through ``manage.py`` as an operator would, and read what
it recorded through ``manage.py`` too.
"""

import ftplib
import hashlib
import io
import json
import os
import shutil
import ssl
import subprocess

import pytest

from tests.e2e import AppServer
from tests.ftps_support import PASSWORD, FtpsServer, client_files, curl, lftp, refused
from tests.pki import DAY, NOW, make_client, make_impostor, make_intermediate, make_root

pytestmark = pytest.mark.e2e


class World:
    def __init__(self, directory):
        self.dir = directory
        self.toot = make_root("Toot")
        self.chug = make_intermediate("Chug and Ring", self.toot)
        self.frank = make_client("Frank", self.chug)
        self.rich_cert = make_client("Rich", self.chug)
        self.dick = make_client("Dick", self.chug)
        self.stranger = make_client("Frank", make_root("Elsewhere Root"))
        # Same name as Chug and Ring, another key, and installed as a root: it connects, but it
        # is not the approved CA.
        self.impostor = make_impostor(self.chug)
        self.frank_by_impostor = make_client("Frank", self.impostor)
        self.password_file = directory / "password"
        self.password_file.write_text(PASSWORD)

    def pem(self, name, *issued) -> str:
        path = self.dir / f"{name}.pem"
        path.write_bytes(b"".join(i.pem for i in issued))
        return str(path)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    world = World(tmp_path_factory.mktemp("ftps-e2e"))
    (world.dir / "app").mkdir()
    world.app = AppServer(world.dir / "app")
    world.app.manage("migrate", "--noinput", "-v0")
    world.app.manage("certs", "roots", "add", world.pem("toot", world.toot))
    world.app.manage("certs", "intermediates", "add", world.pem("chug", world.chug))
    world.ftps = FtpsServer(world.app, implicit=True).start()
    yield world
    world.ftps.stop()
    world.app.database.drop()


@pytest.fixture
def app(world):
    """A clean slate of users, audit, tanks and approvals for each test (the roots stay)."""
    world.app.python(
        "from users.models import User; from audit.models import AuditEvent; from files.models import Transfer; "
        "from certs.models import StoreEntry, TankEntry, TrustSettings; "
        "User.objects.all().delete(); AuditEvent.objects.all().delete(); TankEntry.objects.all().delete(); "
        "Transfer.objects.all().delete(); StoreEntry.objects.filter(store='approved').delete(); "
        "StoreEntry.objects.filter(store='root').exclude(certificate__common_name='Toot').delete(); "
        "TrustSettings.objects.update(match_cn=False); TrustSettings.bump()"
    )
    shutil.rmtree(world.app.data_dir / "files", ignore_errors=True)
    return world.app


def user(world, username, mode, full_name=""):
    args = ["users", "add", username, "--password-file", str(world.password_file)]
    world.app.manage(*args, *(["--full-name", full_name] if full_name else []))
    world.app.manage("users", "policy", username, "--interface", "ftps", "--mode", mode)


def audit(app, action):
    return json.loads(app.manage("audit", "list", "--json", "--action", action).stdout)


def transfers(app):
    code = (
        "import json; from files.models import Transfer; print(json.dumps(list(Transfer.objects.order_by('id')"
        ".values('username', 'interface', 'direction', 'path', 'size', 'offset', 'sha256', 'result'))))"
    )
    return json.loads(app.python(code))


def signs_on(world, username, password="", issued=None, chain=()):
    try:
        world.ftps.sign_on(username, password, issued, chain).quit()
        return True
    except ftplib.error_perm as error:
        assert refused(error), error
        return False


# --- the FTP policy, mode by mode ----------------------------------------------------------------

MODES = {
    # mode: (certificate alone, password alone, both)
    "password": (False, True, True),
    "cert-or-password": (True, True, True),
    "cert": (True, False, True),
    "cert-and-password": (False, False, True),
}


@pytest.mark.parametrize("mode", MODES)
def test_each_mode_of_the_ftp_policy(world, app, mode):
    user(world, "rich", mode, "Rich")
    app.manage("certs", "user", "rich", "import", world.pem("frank", world.frank))
    outcome = (
        signs_on(world, "rich", "", world.frank, [world.chug]),
        signs_on(world, "rich", PASSWORD),
        signs_on(world, "rich", PASSWORD, world.frank, [world.chug]),
    )
    assert outcome == MODES[mode]
    refusals, successes = audit(app, "signon.refused"), audit(app, "signon.success")
    assert len(successes) == sum(outcome) and len(refusals) == 3 - sum(outcome)
    assert {e["detail"]["interface"] for e in refusals + successes} == {"ftps"}


def test_the_https_policy_does_not_decide_ftps(world, app):
    user(world, "rich", "cert")
    app.manage("users", "policy", "rich", "--interface", "https", "--mode", "password")
    assert not signs_on(world, "rich", PASSWORD)


# --- the specification's examples ----------------------------------------------------------------


def test_frank_by_thumbprint(world, app):
    user(world, "rich", "cert", "Rich")
    assert not signs_on(world, "rich", "", world.frank, [world.chug])
    app.manage("certs", "user", "rich", "import", world.pem("frank", world.frank))
    client = world.ftps.ftplib(world.frank, [world.chug])
    assert client.login("rich", "") == "230 Signed on as rich by certificate (thumbprint)."
    client.quit()
    (success,) = audit(app, "signon.success")
    assert (success["detail"]["rule"], success["target"]) == ("thumbprint", "rich")


def test_frank_by_cn_once_chug_and_ring_is_approved(world, app):
    user(world, "rich", "cert", "Rich")
    app.manage("certs", "user", "rich", "add-cn", "Frank")
    assert not signs_on(world, "rich", "", world.frank, [world.chug])
    app.manage("certs", "cas", "add", world.pem("chug", world.chug))
    assert signs_on(world, "rich", "", world.frank, [world.chug])
    assert audit(app, "signon.success")[0]["detail"]["rule"] == "cn"


def test_frank_as_user_frank_by_match_cn(world, app):
    user(world, "frank", "cert")
    app.manage("certs", "cas", "add", world.pem("chug", world.chug))
    assert not signs_on(world, "frank", "", world.frank, [world.chug])
    app.manage("certs", "match-cn", "on")
    assert signs_on(world, "frank", "", world.frank, [world.chug])
    assert audit(app, "signon.success")[0]["detail"]["rule"] == "match_cn"


def test_rich_with_the_alternate_cn_dick_and_his_own_name(world, app):
    user(world, "rich", "cert", "Rich")
    app.manage("certs", "user", "rich", "add-cn", "Dick")
    app.manage("certs", "cas", "add", world.pem("chug", world.chug))
    app.manage("certs", "match-cn", "on")
    assert signs_on(world, "rich", "", world.dick, [world.chug])
    assert signs_on(world, "rich", "", world.rich_cert, [world.chug])
    assert [e["detail"]["rule"] for e in audit(app, "signon.success")] == ["cn", "match_cn"]
    # Frank is neither on the profile nor Rich's name.
    assert not signs_on(world, "rich", "", world.frank, [world.chug])


def test_a_ca_that_only_shares_the_approved_cas_name_is_not_approved(world, app):
    user(world, "rich", "cert", "Rich")
    app.manage("certs", "user", "rich", "add-cn", "Frank")
    app.manage("certs", "cas", "add", world.pem("chug", world.chug))
    app.manage("certs", "roots", "add", world.pem("impostor", world.impostor))
    assert not signs_on(world, "rich", "", world.frank_by_impostor)
    (refusal,) = audit(app, "signon.refused")
    assert refusal["detail"]["category"] == "connects_only"


def test_a_certificate_that_cannot_connect_ends_the_connection(world, app):
    user(world, "rich", "cert-or-password", "Rich")
    client = ftplib.FTP_TLS(context=world.ftps.context(world.stranger), timeout=20)
    client.connect("localhost", world.ftps.port)
    client.auth()
    with pytest.raises(ftplib.error_temp) as refusal:
        client.prot_p()  # the first command after the handshake gets the refusal
    assert refusal.value.args[0].startswith("421 Sign-on failed.")
    (entry,) = audit(app, "signon.refused")
    assert entry["detail"]["category"] == "cannot_connect" and entry["detail"]["interface"] == "ftps"
    # Not even a password gets through with it.
    assert not signs_on_after_refusal(world)


def signs_on_after_refusal(world):
    try:
        world.ftps.sign_on("rich", PASSWORD, world.stranger)
    except (ftplib.error_temp, ftplib.error_perm, EOFError, ConnectionError, ssl.SSLError):
        return False
    return True


def test_no_certificate(world, app):
    user(world, "rich", "cert", "Rich")
    user(world, "pat", "password")
    assert not signs_on(world, "rich", PASSWORD)
    assert signs_on(world, "pat", PASSWORD)


def test_a_certificate_that_connects_but_does_not_authenticate_lands_in_the_users_tank(world, app):
    user(world, "rich", "cert", "Rich")
    assert not signs_on(world, "rich", "", world.frank, [world.chug])
    tank = json.loads(app.manage("certs", "tank", "list", "--json", "--user", "rich").stdout)
    assert sorted(t["kind"] for t in tank) == ["cn", "thumbprint"]
    assert {t["interface"] for t in tank} == {"ftps"}
    # Accepting it from the tank lets it sign on.
    (thumbprint,) = [t for t in tank if t["kind"] == "thumbprint"]
    app.manage("certs", "tank", "accept", str(thumbprint["id"]))
    assert signs_on(world, "rich", "", world.frank, [world.chug])


def test_a_renewal_lands_as_such_is_accepted_with_replace_and_the_old_one_stops(world, app):
    user(world, "rich", "cert", "Rich")
    old = make_client("Rich Renewing", world.chug, not_after=NOW + 9 * DAY)
    renewal = make_client("Rich Renewing", world.chug, not_after=NOW + 400 * DAY)
    app.manage("certs", "user", "rich", "import", world.pem("renewing-old", old))
    assert signs_on(world, "rich", "", old, [world.chug])
    assert not signs_on(world, "rich", "", renewal, [world.chug])
    tank = json.loads(app.manage("certs", "tank", "list", "--json", "--user", "rich").stdout)
    (thumbprint,) = [t for t in tank if t["kind"] == "thumbprint"]
    assert thumbprint["renewal_of"]["username"] == "rich" and thumbprint["interface"] == "ftps"
    assert (
        "as the renewal of"
        in app.manage("certs", "tank", "accept", str(thumbprint["id"]), "--replace", "--keep-old-days", "0").stdout
    )
    assert signs_on(world, "rich", "", renewal, [world.chug])
    assert not signs_on(world, "rich", "", old, [world.chug])


def test_an_unknown_username_gives_the_same_answer(world, app):
    user(world, "rich", "password")
    with pytest.raises(ftplib.error_perm) as unknown:
        world.ftps.sign_on("nobody", PASSWORD)
    with pytest.raises(ftplib.error_perm) as wrong:
        world.ftps.sign_on("rich", "not the password")
    assert str(unknown.value) == str(wrong.value)


# --- changes apply at the next sign-on -------------------------------------------------------------


def test_a_root_removed_while_a_session_is_open(world, app):
    user(world, "rich", "cert", "Rich")
    app.manage("certs", "user", "rich", "import", world.pem("frank", world.frank))
    spare = make_root("Spare Root")
    app.manage("certs", "roots", "add", world.pem("spare", spare))
    open_session = world.ftps.sign_on("rich", "", world.frank, [world.chug])
    assert open_session.nlst() == []
    toot = json.loads(app.manage("certs", "roots", "list", "--json").stdout)
    (entry,) = [r for r in toot if "Toot" in r["subject"]]
    app.manage("certs", "roots", "remove", entry["thumbprint"])
    try:
        client = ftplib.FTP_TLS(context=world.ftps.context(world.frank, [world.chug]), timeout=20)
        client.connect("localhost", world.ftps.port)
        client.auth()
        with pytest.raises(ftplib.error_temp):
            client.prot_p()
        # The open session ends at its next command, as an HTTPS session does.
        with pytest.raises((ftplib.error_temp, EOFError)):
            open_session.nlst()
        assert any("no longer" in e["summary"] for e in audit(app, "signon.ended"))
    finally:
        app.manage("certs", "roots", "add", world.pem("toot", world.toot))


def test_a_mode_change_applies_at_the_next_sign_on(world, app):
    user(world, "rich", "password")
    assert signs_on(world, "rich", PASSWORD)
    app.manage("users", "policy", "rich", "--interface", "ftps", "--mode", "cert")
    assert not signs_on(world, "rich", PASSWORD)


# --- files ---------------------------------------------------------------------------------------


def test_upload_download_list_rename_and_delete_with_the_sha256_recorded(world, app):
    user(world, "rich", "password")
    client = world.ftps.sign_on("rich", PASSWORD)
    data = os.urandom(300_000)
    client.storbinary("STOR report.bin", io.BytesIO(data))
    got = io.BytesIO()
    client.retrbinary("RETR report.bin", got.write)
    assert got.getvalue() == data
    client.mkd("archive")
    client.rename("report.bin", "archive/report-2025.bin")
    assert client.nlst("archive") == ["report-2025.bin"]
    client.delete("archive/report-2025.bin")
    client.rmd("archive")
    client.quit()
    digest = hashlib.sha256(data).hexdigest()
    assert [(t["direction"], t["path"], t["size"], t["sha256"], t["result"]) for t in transfers(app)] == [
        ("upload", "/report.bin", len(data), digest, "complete"),
        ("download", "/report.bin", len(data), digest, "complete"),
    ]
    actions = [e["action"] for e in json.loads(app.manage("audit", "list", "--json", "--user", "rich").stdout)]
    for action in ("file.upload", "file.download", "file.mkdir", "file.rename", "file.delete", "file.rmdir"):
        assert action in actions


def test_resumed_transfers_record_the_whole_files_sha256(world, app):
    user(world, "rich", "password")
    client = world.ftps.sign_on("rich", PASSWORD)
    data = os.urandom(200_000)
    client.storbinary("STOR part.bin", io.BytesIO(data[:50_000]))
    client.storbinary("STOR part.bin", io.BytesIO(data[50_000:]), rest=50_000)
    tail = io.BytesIO()
    client.retrbinary("RETR part.bin", tail.write, rest=150_000)
    client.quit()
    assert tail.getvalue() == data[150_000:]
    resumed_upload, resumed_download = transfers(app)[1:]
    digest = hashlib.sha256(data).hexdigest()
    assert (resumed_upload["offset"], resumed_upload["size"], resumed_upload["sha256"]) == (50_000, 150_000, digest)
    assert (resumed_download["offset"], resumed_download["size"], resumed_download["sha256"]) == (
        150_000,
        50_000,
        digest,
    )


@pytest.mark.parametrize(
    ("command", "reply"),
    [
        ("RETR ../../etc/passwd", "550 The path leads out of your home folder."),
        ("CWD ..", "550 The path leads out of your home folder."),
        ("MKD bad\x07name", "553 A name may not contain NUL, line breaks or other control characters."),
        (
            "MKD " + "x" * 300,
            "553 The name 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…' is too long: at most 255 bytes.",
        ),
        ("MKD con", "553 The name 'con' cannot be used: it is a name Windows reserves for a device."),
        ("PROT C", "534 Data connections are always protected here: use PROT P."),
        ("SITE CHMOD 777 x", '500 Command "SITE CHMOD" not understood.'),
        ("STOU", '500 Command "STOU" not understood.'),
    ],
)
def test_paths_and_commands_that_are_refused_with_a_clear_reply(world, app, command, reply):
    user(world, "rich", "password")
    client = world.ftps.sign_on("rich", PASSWORD)
    try:
        client.sendcmd(command)
        raise AssertionError(f"{command} was accepted")
    except ftplib.all_errors as error:
        assert str(error) == reply
    finally:
        client.quit()


def test_an_absolute_path_is_inside_the_home_folder(world, app):
    user(world, "rich", "password")
    client = world.ftps.sign_on("rich", PASSWORD)
    with pytest.raises(ftplib.error_perm, match="^550"):
        client.sendcmd("SIZE /etc/passwd")
    client.storbinary("STOR /top.txt", io.BytesIO(b"top"))
    assert client.size("/top.txt") == 3
    client.quit()


def test_links_in_a_home_folder_are_never_followed(world, app):
    user(world, "rich", "password")
    world.ftps.sign_on("rich", PASSWORD).quit()  # makes the home folder
    home = world.app.data_dir / "files" / "rich"
    (home / "secrets").symlink_to("/etc")
    (home / "passwd").symlink_to("/etc/passwd")
    client = world.ftps.sign_on("rich", PASSWORD)
    assert client.nlst() == []  # links are not listed
    for command in ("RETR passwd", "CWD secrets", "RETR secrets/passwd"):
        with pytest.raises(ftplib.error_perm, match="^550 .*link"):
            client.sendcmd(command) if not command.startswith("RETR") else client.retrbinary(command, print)
    client.quit()


def test_plain_ftp_is_never_offered(world, app):
    user(world, "rich", "password")
    plain = ftplib.FTP(timeout=20)
    plain.connect("localhost", world.ftps.port)
    with pytest.raises(ftplib.error_perm, match="^530 This server speaks FTPS only"):
        plain.login("rich", PASSWORD)
    plain.close()


def test_a_data_connection_without_the_control_connections_certificate_is_refused(world, app):
    user(world, "rich", "cert", "Rich")
    app.manage("certs", "user", "rich", "import", world.pem("frank", world.frank))
    no_certificate = ssl.create_default_context(cafile=str(world.ftps.server_certificate))

    class Thief(ftplib.FTP_TLS):
        """Connects to the data port without the certificate (as someone else would)."""

        def ntransfercmd(self, cmd, rest=None):
            conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
            return no_certificate.wrap_socket(conn, server_hostname=self.host), size

    client = Thief(context=world.ftps.context(world.frank, [world.chug]), timeout=20)
    client.connect("localhost", world.ftps.port)
    client.auth()
    client.prot_p()
    client.login("rich", "")
    with pytest.raises((ftplib.error_temp, ftplib.error_reply, ssl.SSLError, OSError)):
        client.retrlines("LIST")
    client.close()
    (entry,) = audit(app, "ftps.data_refused")
    assert "no certificate" in entry["summary"]


# --- other clients ---------------------------------------------------------------------------------


def test_curl_uploads_and_downloads_with_a_client_certificate(world, app, tmp_path):
    user(world, "rich", "cert", "Rich")
    app.manage("certs", "user", "rich", "import", world.pem("frank", world.frank))
    cert, key = client_files(tmp_path, world.frank, world.chug)
    source = tmp_path / "up.bin"
    source.write_bytes(os.urandom(100_000))
    common = [curl(), "-sS", "--ftp-ssl-reqd", "--cacert", str(world.ftps.server_certificate), "--cert", cert]
    common += ["--key", key, "-u", "rich:"]
    base = f"ftp://localhost:{world.ftps.port}/"
    subprocess.run([*common, "-T", str(source), base], check=True, timeout=60)
    got = subprocess.run([*common, base + "up.bin"], check=True, capture_output=True, timeout=60).stdout
    assert got == source.read_bytes()
    # Implicit FTPS: TLS from the first byte.
    implicit = f"ftps://localhost:{world.ftps.implicit_port}/up.bin"
    assert subprocess.run([*common, implicit], check=True, capture_output=True, timeout=60).stdout == got
    # Without the certificate, curl is refused.
    without = [c for c in common if c not in (cert, key, "--cert", "--key")]
    assert subprocess.run([*without, base + "up.bin"], capture_output=True, timeout=60).returncode != 0


def test_lftp_mirrors_a_folder_up_and_down(world, app, tmp_path):
    user(world, "rich", "cert", "Rich")
    app.manage("certs", "user", "rich", "import", world.pem("frank", world.frank))
    cert, key = client_files(tmp_path, world.frank, world.chug)
    local = tmp_path / "outbox"
    local.mkdir()
    for index in range(3):
        (local / f"file-{index}.txt").write_text(f"content {index}\n" * 1000)
    back = tmp_path / "back"
    script = tmp_path / "script.lftp"
    script.write_text(
        f"set ssl:ca-file {world.ftps.server_certificate}\nset ssl:cert-file {cert}\nset ssl:key-file {key}\n"
        "set ftp:ssl-force true\nset ftp:ssl-protect-data true\nset net:max-retries 1\nset net:timeout 15\n"
        f"open -u rich, ftp://localhost:{world.ftps.port}\n"
        f"mirror -R {local} outbox\nmirror outbox {back}\nbye\n"
    )
    result = subprocess.run([lftp(), "-f", str(script)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in back.iterdir()) == ["file-0.txt", "file-1.txt", "file-2.txt"]
    assert (back / "file-1.txt").read_text() == (local / "file-1.txt").read_text()
    assert {t["direction"] for t in transfers(app)} == {"upload", "download"}
