"""Real components for end-to-end tests: the app under gunicorn on its own database, a browser.

The app runs in its own processes with its own data folder and database, exactly as the
README's run command starts it; the tests talk to it over HTTP and administer it through
``manage.py``, never through this process's Django.

A component that is not installed skips its tests with the reason, unless
``MFT_REQUIRE_E2E=1`` (set by CI), which turns the skip into a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent


def require(component: str, found, how: str):
    """Skip (or, under MFT_REQUIRE_E2E=1, fail) when a component is missing."""
    if found:
        return found
    reason = f"{component} is not installed ({how})"
    if os.environ.get("MFT_REQUIRE_E2E") == "1":
        pytest.fail(f"{reason}; MFT_REQUIRE_E2E=1 requires it")
    pytest.skip(reason)


def chromium_path() -> str:
    candidates = [os.environ.get("MFT_CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser")]
    return require("Chromium", next((c for c in candidates if c), None), "apt-get install chromium")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class Database:
    """A database of its own for one app under test: a SQLite file, or a fresh PostgreSQL database."""

    def __init__(self, data_dir: Path):
        base = os.environ.get("DATABASE_URL", "")
        self.admin_url = None
        if base.startswith(("postgres://", "postgresql://")):
            parts = urlsplit(base)
            self.name = f"mft_e2e_{uuid.uuid4().hex[:12]}"
            self.admin_url = base
            self.url = urlunsplit(parts._replace(path="/" + self.name))
            self._postgres(f'CREATE DATABASE "{self.name}"')
        else:
            self.url = f"sqlite:///{data_dir / 'db.sqlite3'}"

    def _postgres(self, statement: str):
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            connection.execute(statement)

    def drop(self):
        if self.admin_url:
            self._postgres(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


class AppServer:
    """The app under gunicorn, on loopback, with a data folder and database of its own."""

    def __init__(self, data_dir: Path, host: str = "127.0.0.1", workers: int = 2, extra_env: dict | None = None):
        self.data_dir = data_dir
        self.host = host
        self.port = free_port(host)
        self.workers = workers
        self.database = Database(data_dir)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("MFT_", "DJANGO_", "DATABASE_URL"))}
        self.env.update(
            {
                "MFT_DATA_DIR": str(data_dir),
                "DATABASE_URL": self.database.url,
                "MFT_ALLOWED_HOSTS": "127.0.0.1,localhost",
                "MFT_LOG_LEVEL": "WARNING",
            }
        )
        self.env.update(extra_env or {})
        self.process = None
        self.log = data_dir / "gunicorn.log"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def manage(self, *args, check=True, input_text=None) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            input=input_text,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def python(self, code: str) -> str:
        """Run code inside the app's Django (for setting up what only sign-on would create)."""
        return self.manage("shell", "-c", code).stdout

    def start(self):
        self.manage("migrate", "--noinput", "-v0")
        gunicorn = Path(sys.executable).with_name("gunicorn")
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [str(gunicorn), "mft.wsgi", "--bind", f"{self.host}:{self.port}", "--workers", str(self.workers)],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"gunicorn exited:\n{self.log.read_text()}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"gunicorn did not answer within 30 s:\n{self.log.read_text()}")

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.database.drop()
