"""Real components for end-to-end tests: the app under gunicorn on its own database, a browser.

The app runs in its own processes with its own data folder and database, exactly as the
README's run command starts it; the tests talk to it over HTTP and administer it through
``manage.py``, never through this process's Django.

A component that is not installed skips its tests with the reason, unless
``MFT_REQUIRE_E2E=1`` (set by CI), which turns the skip into a failure.
"""

from __future__ import annotations

import http.client
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


def redis_url(db: int) -> str:
    """A Redis database of the tests' own (emptied first), on the local Redis server."""
    host, port = os.environ.get("MFT_TEST_REDIS", "127.0.0.1:6379").rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=2) as connection:
            connection.sendall(f"SELECT {db}\r\nFLUSHDB\r\n".encode())
            answer = connection.recv(100)
    except OSError:
        answer = b""
    require("Redis", answer.startswith(b"+OK"), "apt-get install redis-server, and start it")
    return f"redis://{host}:{port}/{db}"


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

    def __init__(
        self,
        data_dir: Path,
        host: str = "127.0.0.1",
        workers: int = 2,
        extra_env: dict | None = None,
        database: Database | None = None,
        builtin_tls: bool = False,
        unix_socket: bool = False,
    ):
        self.data_dir = data_dir
        self.host = host
        self.port = free_port(host)
        # Behind a proxy over the app's unix socket (the shipped default), instead of TCP.
        self.socket = data_dir / "app.sock" if unix_socket else None
        self.workers = workers
        # Instances given the same database share it (and only its creator drops it).
        self.owns_database = database is None
        self.database = database or Database(data_dir)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("MFT_", "DJANGO_", "DATABASE_URL"))}
        self.env.update(
            {
                "MFT_DATA_DIR": str(data_dir),
                "DATABASE_URL": self.database.url,
                "MFT_ALLOWED_HOSTS": "127.0.0.1,localhost",
                "MFT_LOG_LEVEL": "WARNING",
            }
        )
        self.builtin_tls = builtin_tls
        bind = f"unix:{self.socket}" if self.socket else f"{host}:{self.port}"
        self.env.update({"MFT_BIND": bind, "MFT_WORKERS": str(workers)})
        self.env.update(extra_env or {})
        self.process = None
        self.log = data_dir / "gunicorn.log"

    @property
    def url(self) -> str:
        if self.builtin_tls:
            return f"https://localhost:{self.port}"
        return f"http://{self.host}:{self.port}"

    @property
    def server_certificate(self) -> Path:
        """The built-in server's own certificate, for clients to verify it."""
        return self.data_dir / "tls" / "server-cert.pem"

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
        return self.manage("shell", "-v", "0", "-c", code).stdout

    def start(self):
        if self.owns_database:
            self.manage("migrate", "--noinput", "-v0")
        gunicorn = Path(sys.executable).with_name("gunicorn")
        config = "mft/gunicorn_builtin.py" if self.builtin_tls else "mft/gunicorn_proxy.py"
        command = [str(gunicorn), "-c", config, "mft.wsgi"]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                command,
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
                if self._healthy():
                    return self
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"gunicorn did not answer within 30 s:\n{self.log.read_text()}")

    def _healthy(self) -> bool:
        if self.socket is not None:
            return self.over_socket("GET", "/healthz")[0] == 200
        if not self.builtin_tls:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:
                return response.status == 200
        import ssl

        if not self.server_certificate.exists():
            raise OSError("no server certificate yet")
        context = ssl.create_default_context(cafile=str(self.server_certificate))
        with urllib.request.urlopen(f"{self.url}/healthz", timeout=2, context=context) as response:
            return response.status == 200

    def over_socket(self, method: str, path: str, headers: dict | None = None) -> tuple[int, str]:
        """A request straight to the app's unix socket, as any local process that may open it could."""
        connection = UnixHTTPConnection(str(self.socket))
        try:
            connection.request(method, path, headers={"Host": "localhost", **(headers or {})})
            response = connection.getresponse()
            return response.status, response.read().decode()
        finally:
            connection.close()

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
        if self.owns_database:
            self.database.drop()


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str):
        super().__init__("localhost", timeout=5)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(5)
        self.sock.connect(self.path)


class Nginx:
    """A real nginx in front of the app, configured from the site file the project ships.

    It listens on 127.0.0.1 with TLS and reaches the app as the site file says: over the app's
    unix socket with the shared proxy secret (the shipped default), or, for an app on TCP,
    from 127.0.0.2, so that the app can tell the proxy from anyone else on loopback.
    """

    PROXY_ADDRESS = "127.0.0.2"

    def __init__(self, directory: Path, app: AppServer, site: str = "mft.conf", secret: str | None = None):
        self.binary = require("nginx", shutil.which("nginx") or _sbin("nginx"), "apt-get install nginx")
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.app = app
        self.site = site
        self.secret = secret or app.env.get("MFT_PROXY_SECRET", "")
        self.process = None

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}"

    def export_roots(self):
        self.app.manage("certs", "export-roots", str(self.directory / "client-roots.pem"))

    def config(self) -> str:
        site = (ROOT / "deploy" / "nginx" / self.site).read_text()
        if self.app.socket is not None:
            site = site.replace("server unix:/run/mft/app.sock;", f"server unix:{self.app.socket};")
        else:
            site = site.replace("server unix:/run/mft/app.sock;", f"server {self.app.host}:{self.app.port};")
            site = site.replace(
                "proxy_pass http://mft_app;", f"proxy_pass http://mft_app;\n        proxy_bind {self.PROXY_ADDRESS};"
            )
        site = site.replace("listen 443 ssl;", f"listen 127.0.0.1:{self.port} ssl;")
        site = site.replace("/etc/ssl/mft/", f"{self.directory}/")
        site = site.replace("/etc/nginx/snippets/", f"{self.directory}/")
        headers = (ROOT / "deploy" / "nginx" / "mft-proxy-headers.conf").read_text()
        (self.directory / "mft-proxy-headers.conf").write_text(headers.replace("/etc/mft/", f"{self.directory}/"))
        (self.directory / "proxy-secret.conf").write_text(f'proxy_set_header X-MFT-Proxy-Secret "{self.secret}";\n')
        temp = self.directory / "temp"
        # Started as root, nginx's workers would run as "nobody", which may not open the app's
        # socket in a test folder: in production the proxy's user is in the socket's group.
        user = "user root;" if os.geteuid() == 0 else ""
        return f"""
{user}
daemon off;
worker_processes 1;
pid {self.directory}/nginx.pid;
error_log {self.directory}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {self.directory}/access.log;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    {site}
}}
"""

    def start(self, server_cert: Path, server_key: Path):
        shutil.copy(server_cert, self.directory / "server-cert.pem")
        shutil.copy(server_key, self.directory / "server-key.pem")
        (self.directory / "temp").mkdir(exist_ok=True)
        self.export_roots()
        conf = self.directory / "nginx.conf"
        conf.write_text(self.config())
        test = subprocess.run(
            [self.binary, "-t", "-c", str(conf), "-p", str(self.directory)], capture_output=True, text=True
        )
        if test.returncode != 0:
            raise AssertionError(f"nginx rejected its configuration:\n{test.stderr}")
        self.process = subprocess.Popen(
            [self.binary, "-c", str(conf), "-p", str(self.directory)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"nginx exited:\n{(self.directory / 'error.log').read_text()}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.1)
        raise AssertionError("nginx did not start listening within 15 s")

    def reload(self):
        """Re-export the trusted root store and have nginx read it again."""
        self.export_roots()
        conf = self.directory / "nginx.conf"
        subprocess.run([self.binary, "-s", "reload", "-c", str(conf), "-p", str(self.directory)], check=True)
        time.sleep(1.0)  # new workers take over

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def _sbin(name: str) -> str | None:
    for folder in ("/usr/sbin", "/usr/local/sbin", "/sbin"):
        if os.access(f"{folder}/{name}", os.X_OK):
            return f"{folder}/{name}"
    return None


class HttpsClient:
    """A small HTTP(S) client with a cookie jar and, optionally, a client certificate."""

    def __init__(self, base_url: str, cafile: Path | None = None, cert: Path | None = None, key: Path | None = None):
        import http.cookiejar
        import ssl
        import urllib.request

        self.base_url = base_url
        if base_url.startswith("https:") and cafile is None:
            raise ValueError("an HTTPS client verifies the server: give the server's certificate")
        context = ssl.create_default_context(cafile=str(cafile) if cafile else None)
        if cert is not None:
            context.load_cert_chain(str(cert), str(key) if key else None)
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=context),
            urllib.request.HTTPHandler(),
            urllib.request.HTTPCookieProcessor(self.jar),
        )

    def request(self, path: str, data: dict | None = None, headers: dict | None = None):
        """(status, body text); HTTP errors are answers too, not exceptions."""
        import urllib.error
        import urllib.parse
        import urllib.request

        body = urllib.parse.urlencode(data).encode() if data is not None else None
        request = urllib.request.Request(self.base_url + path, data=body, headers=headers or {})
        try:
            with self.opener.open(request, timeout=20) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def whoami(self) -> dict:
        import json

        status, body = self.request("/api/whoami")
        assert status == 200, (status, body)
        return json.loads(body)

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.jar if c.name == name), None)

    def post_form(self, path: str, data: dict, extra_headers: dict | None = None):
        """POST a form as a browser does: CSRF cookie and token from a GET first, Origin and Referer set."""
        import re

        status, page = self.request(path)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert token, (status, page[:500])
        headers = {"Referer": self.base_url + path, "Origin": self.base_url, **(extra_headers or {})}
        return self.request(path, {**data, "csrfmiddlewaretoken": token.group(1)}, headers)
