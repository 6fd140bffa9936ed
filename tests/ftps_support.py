"""The FTPS server under test: ``manage.py ftpserver`` in a process of its own, and clients.

The server shares an ``AppServer``'s data folder, database and environment, so the tests
administer it through ``manage.py`` exactly as an operator would.
"""

from __future__ import annotations

import ftplib
import shutil
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

from tests.e2e import ROOT, AppServer, free_port, require
from tests.pki import Issued

PASSWORD = "a long user passphrase"


class FtpsServer:
    def __init__(self, app: AppServer, *, implicit: bool = False, name: str = "ftps", extra_env: dict | None = None):
        self.app = app
        self.port = free_port()
        self.implicit_port = free_port() if implicit else None
        self.log = app.data_dir / f"{name}.log"
        self.env = dict(app.env, **(extra_env or {}))
        self.env["MFT_FTPS_BIND"] = f"127.0.0.1:{self.port}"
        self.env["MFT_FTPS_IMPLICIT_BIND"] = f"127.0.0.1:{self.implicit_port}" if implicit else "off"
        self.process = None

    @property
    def server_certificate(self) -> Path:
        return self.app.data_dir / "tls" / "server-cert.pem"

    def start(self) -> FtpsServer:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "ftpserver"], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the FTPS server exited:\n{self.log.read_text()}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.1)
        raise AssertionError(f"the FTPS server did not listen within 30 s:\n{self.log.read_text()}")

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()

    # --- clients ----------------------------------------------------------------------------------

    def context(self, issued: Issued | None = None, chain=(), directory: Path | None = None) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.server_certificate))
        if issued is not None:
            cert, key = client_files(directory or self.app.data_dir, issued, *chain)
            context.load_cert_chain(cert, key)
        return context

    def ftplib(self, issued: Issued | None = None, chain=(), *, context: ssl.SSLContext | None = None):
        """An FTP_TLS client on the control connection, TLS set up and data protected, not signed on."""
        client = ftplib.FTP_TLS(context=context or self.context(issued, chain), timeout=20)
        client.connect("localhost", self.port)
        client.auth()
        client.prot_p()
        return client

    def sign_on(self, username: str, password: str = "", issued: Issued | None = None, chain=()):
        client = self.ftplib(issued, chain)
        client.login(username, password)
        return client


def client_files(directory: Path, issued: Issued, *chain: Issued) -> tuple[str, str]:
    """The client's certificate file (its certificate, then its chain) and its key file."""
    name = f"client-{issued.cert.serial_number:x}"
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    cert.write_bytes(b"".join(i.pem for i in (issued, *chain)))
    key.write_bytes(issued.key_pem)
    return str(cert), str(key)


def curl() -> str:
    return require("curl", shutil.which("curl"), "apt-get install curl")


def lftp() -> str:
    return require("lftp", shutil.which("lftp"), "apt-get install lftp")


def refused(error: Exception) -> bool:
    """Whether an ftplib error is the sign-on refusal the HTTPS page also gives."""
    return "Sign-on failed. Check your username, your password and your client certificate." in str(error)
