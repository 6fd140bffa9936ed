"""The FTPS control connection: TLS first, sign-on by the user's FTP policy, then the home folder.

Built on pyftpdlib's TLS handler. What this class adds:

- Plain FTP is never offered: nothing but AUTH, FEAT, HELP, NOOP, SYST and QUIT is accepted
  before TLS (implicit FTPS starts with TLS), and data connections are always protected
  (PROT P; PROT C is refused).
- The handshake asks for a client certificate. One that cannot connect (does not chain up to
  the trusted root store) ends the connection at once, its refusal recorded as over HTTPS.
- USER and PASS are decided by ``signon.flows`` with the FTP policy: the same trust engine,
  the same rules, the same audit entries and holding tank. A refusal tells the client no more
  than the HTTPS sign-in page does.
- An open session is checked again before every file command, as an HTTPS session is on every
  request: a certificate removed, a root removed or a mode changed ends it.
- Every path is checked before pyftpdlib sees it (``files.homes``), with a reply that says why.
- Every transfer is recorded with the file's SHA-256, computed while the bytes stream.
"""

from __future__ import annotations

import logging

from cryptography.hazmat.primitives.hashes import SHA256
from django.utils import timezone
from pyftpdlib.handlers import TLS_FTPHandler
from pyftpdlib.log import logger as ftp_logger

from files import flows as files
from files.homes import PathRefused, check_new_name, names
from files.models import Direction, Result
from signon.proxy import MAX_CHAIN, NOTHING, Presented
from users.models import Interface

from . import flows
from .data import ProtectedDataHandler
from .filesystem import HomeFS

logger = logging.getLogger(__name__)

BEFORE_TLS = {"AUTH", "FEAT", "HELP", "NOOP", "SYST", "QUIT"}
# Commands whose argument names a path, and those of them that may create a name.
PATH_COMMANDS = {
    "CWD", "XCWD", "LIST", "NLST", "MLSD", "MLST", "STAT", "RETR", "STOR", "APPE",
    "DELE", "RMD", "XRMD", "MKD", "XMKD", "RNFR", "RNTO", "SIZE", "MDTM", "MFMT",
}  # fmt: skip
NEW_NAMES = {"STOR", "APPE", "MKD", "XMKD", "RNTO"}


class HomeAuthorizer:
    """pyftpdlib's authorizer, reduced to what is left once sign-on decided: a signed-on user may
    do everything in their own home folder but change file modes."""

    PERMISSIONS = "elradfmwT"

    def has_perm(self, username, perm, path=None) -> bool:
        return perm in self.PERMISSIONS

    def get_perms(self, username) -> str:
        return self.PERMISSIONS

    def get_msg_login(self, username) -> str:
        return "Signed on."

    def get_msg_quit(self, username) -> str:
        return "Goodbye."

    def impersonate_user(self, username, password) -> None:
        """Every user's files belong to the service's own system account."""

    def terminate_impersonation(self, username) -> None:
        """Nothing to undo."""


class SignOnHandler(TLS_FTPHandler):
    tls_control_required = True
    tls_data_required = True
    abstracted_fs = HomeFS
    authorizer = HomeAuthorizer()
    dtp_handler = ProtectedDataHandler
    banner = "MFT FTPS ready."
    use_sendfile = False
    permit_foreign_addresses = False  # a data connection comes from the client's own address
    permit_privileged_ports = False
    implicit = False

    proto_cmds = {name: spec for name, spec in TLS_FTPHandler.proto_cmds.items() if name not in ("STOU", "SITE CHMOD")}

    def __init__(self, conn, server, ioloop=None):
        self.presented = NOTHING
        self.decision = None
        self.user = None
        self._transfer = None
        self.data_refusal = ""
        super().__init__(conn, server, ioloop)

    # --- TLS and the certificate ----------------------------------------------------------------

    def handle(self):
        if not self.implicit:
            return super().handle()
        self.on_connect()
        self._pbsz = self._prot = True  # implicit FTPS protects data connections from the start
        self.secure_connection(self.ssl_context)

    def handle_ssl_established(self):
        self.presented = self._peer(self.socket)
        if flows.cannot_connect(self.presented, self.remote_ip):
            self.respond("421 " + flows.REFUSED)
            self.close_when_done()
            return
        if self.implicit:
            self.respond(f"220 {self.banner}")

    @staticmethod
    def _peer(connection) -> Presented:
        cert = connection.get_peer_certificate(as_cryptography=True)
        if cert is None:
            return NOTHING
        chain = [c for c in connection.get_peer_cert_chain(as_cryptography=True) or [] if c != cert]
        return Presented(cert, tuple(chain[:MAX_CHAIN]))

    @property
    def certificate_fingerprint(self) -> bytes | None:
        """The control connection's client certificate (DER), which data connections must match."""
        cert = self.presented.cert
        return None if cert is None else cert.fingerprint(SHA256())

    # --- commands ---------------------------------------------------------------------------------

    def process_command(self, cmd, *args, **kwargs):
        if not self._ssl_established and cmd not in BEFORE_TLS:
            self.respond("530 This server speaks FTPS only: send AUTH TLS first.")
            return
        super().process_command(cmd, *args, **kwargs)

    def pre_process_command(self, line, cmd, arg):
        if self.authenticated and cmd in PATH_COMMANDS:
            if self._session_ended():
                return
            problem = self._path_problem(cmd, arg)
            if problem is not None:
                self.respond(problem)
                self.log_cmd(cmd, arg, int(problem[:3]), problem[4:])
                return
        super().pre_process_command(line, cmd, arg)

    def _path_problem(self, cmd: str, arg: str) -> str | None:
        target = arg
        if cmd == "MFMT":
            target = arg.partition(" ")[2]
        elif cmd == "LIST" and arg.startswith("-"):
            target = arg.partition(" ")[2]  # options such as -la come first
        try:
            parts = names(target, cwd=self.fs.cwd_parts, ftp=True)
            home = self.fs.home
            home.path(parts)  # nothing on the way may be a link
            if cmd in NEW_NAMES and parts and home.kind(parts) is None:
                check_new_name(parts[-1])
        except PathRefused as exc:
            return f"{553 if cmd in NEW_NAMES else 550} {exc}"
        return None

    def _session_ended(self) -> bool:
        problem = flows.still_signed_on(self.decision, self.presented, self.remote_ip)
        if problem is None:
            return False
        self.respond("421 Your session has ended; sign on again.")
        self.close_when_done()
        return True

    def ftp_PROT(self, line):
        if line.strip().upper() == "C":
            self.respond("534 Data connections are always protected here: use PROT P.")
            return
        super().ftp_PROT(line)

    # --- sign-on ----------------------------------------------------------------------------------

    def ftp_PASS(self, line):
        if self.authenticated:
            self.respond("503 User already authenticated.")
            return
        if not self.username:
            self.respond("503 Login with USER first.")
            return
        decision = flows.sign_on(self.presented, self.username, line, self.remote_ip)
        if not decision.ok:
            self._refuse(line)
            return
        self.decision, self.user = decision, decision.user
        home = files.home(decision.user)
        rule = f" ({decision.rule})" if decision.rule else ""
        self.handle_auth_success(
            str(home.root), line, f"Signed on as {decision.user.username} by {decision.method}{rule}."
        )

    def _refuse(self, password):
        """As pyftpdlib refuses a login (a pause, then 530, disconnecting after a few), with the
        same words the HTTPS sign-in page uses."""
        username = self.username
        self.username = ""

        def answer():
            self.add_channel()
            if getattr(self, "_closed", True):
                return
            self.attempted_logins += 1
            if self.attempted_logins >= self.max_login_attempts:
                self.respond("530 " + flows.REFUSED + " Disconnecting.")
                self.close_when_done()
            else:
                self.respond("530 " + flows.REFUSED)
            self.log(f"USER '{username}' failed login.")

        self.del_channel()
        self.ioloop.call_later(self.auth_failed_timeout, answer, _errback=self.handle_error)

    def flush_account(self):
        super().flush_account()
        self.decision = self.user = None

    # --- transfers --------------------------------------------------------------------------------

    def transfer_opened(self, file, parts):
        """Called by the file system for the file it opens for a transfer (one at a time)."""
        file.parts, file.started = parts, timezone.now()
        self._transfer, self.data_refusal = file, ""

    # pyftpdlib calls these when the data connection has closed, and with it the file.
    def on_file_sent(self, filename):
        self._transfer_ended(filename, complete=True)

    def on_file_received(self, filename):
        self._transfer_ended(filename, complete=True)

    def on_incomplete_file_sent(self, filename):
        self._transfer_ended(filename, complete=False)

    def on_incomplete_file_received(self, filename):
        self._transfer_ended(filename, complete=False)

    def _transfer_ended(self, filename, complete: bool) -> None:
        """Record what moved, with the file's digest."""
        file, self._transfer = self._transfer, None
        if file is None or file.name != filename or self.user is None:
            return
        refusal = self.data_refusal
        complete = complete and not refusal
        flows.fresh_database()
        files.record_transfer(
            self.user,
            interface=Interface.FTPS,
            direction=Direction.UPLOAD if file.writing else Direction.DOWNLOAD,
            parts=file.parts,
            size=file.transferred,
            sha256=file.sha256(),
            result=Result.COMPLETE if complete else Result.ABORTED,
            started_at=file.started,
            source_address=self.remote_ip,
            offset=file.offset,
            reason=refusal or ("" if complete else "the data connection closed before the end"),
        )

    def log_exception(self, instance):
        ftp_logger.exception("Unexpected error in %r", instance)


class ImplicitSignOnHandler(SignOnHandler):
    """Implicit FTPS: TLS from the first byte (the banner comes after the handshake)."""

    implicit = True
