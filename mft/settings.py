"""Settings, read from the environment with safe defaults.

With no variable set the app runs on SQLite in the project's ``data/`` folder, with a secret
key and a key-encryption key generated once and kept there. Every variable is read by a
helper that fails at start-up, naming the variable, when its value cannot be used.
"""

import ipaddress
import os
import secrets
import sys
from pathlib import Path
from urllib.parse import urlsplit

import csp.constants as csp
import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from ftps import addresses
from signon import proxy

BASE_DIR = Path(__file__).resolve().parent.parent


def envstr(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def envbool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a yes/no value; use 1/0, true/false or on/off.")


def envint(name: str, default: int, minimum: int | None = None) -> int:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a whole number.") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} is too small; the least allowed is {minimum}.")
    return number


def envlist(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def envaddress(name: str, default: str) -> tuple[str, int] | None:
    """'host:port' or '[v6]:port' as (host, port); 'off' as None."""
    try:
        return addresses.parse_address(os.environ.get(name) or default)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}: {exc}") from None


def envports(name: str) -> list[int]:
    """'60000-60099' or '60000-60009,60100' as a list of ports; nothing as [] (any free port)."""
    try:
        return addresses.parse_ports(os.environ.get(name, ""))
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}: {exc}") from None


def envsecret(name: str, data_file: Path, length: int = 50) -> str:
    """A secret from the environment, or one generated once and kept in the data folder."""
    value = os.environ.get(name)
    if value is not None:
        if len(value.strip()) < 32:
            raise ImproperlyConfigured(f"{name} is set but shorter than 32 characters; use a long random value.")
        return value.strip()
    try:
        return data_file.read_text().strip()
    except FileNotFoundError:
        pass
    data_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(length)
    try:
        fd = os.open(data_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return data_file.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    return secret


def envsecretfile(name: str, minimum: int = 32) -> str | None:
    """A secret given in ``name`` or, in ``name``_FILE, the path of a file holding it (first line)."""
    value, path = os.environ.get(name), os.environ.get(f"{name}_FILE")
    if value is not None and path is not None:
        raise ImproperlyConfigured(f"Set {name} or {name}_FILE, not both.")
    if path is not None:
        try:
            lines = Path(path).read_text().splitlines()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={path!r} cannot be read ({exc.strerror or exc}).") from None
        value = lines[0] if lines else ""
        name = f"{name}_FILE"
    if value is None:
        return None
    value = value.strip()
    if len(value) < minimum:
        raise ImproperlyConfigured(f"{name} is shorter than {minimum} characters; use a long random value.")
    return value


def envrate(name: str, default: str) -> str:
    """A rate such as ``600/minute``: a whole number of requests per second, minute, hour or day."""
    value = os.environ.get(name, "").strip() or default
    count, _, period = value.partition("/")
    if not (count.isdigit() and int(count) > 0 and period in ("second", "minute", "hour", "day")):
        raise ImproperlyConfigured(
            f"{name}={value!r} is not a rate; write requests per period, e.g. 600/minute (second, minute, hour, day)."
        )
    return value


def envdatabase(name: str, default_sqlite: Path) -> dict:
    url = os.environ.get(name, "").strip()
    if not url:
        return _sqlite({"ENGINE": "django.db.backends.sqlite3", "NAME": str(default_sqlite)})
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme not in ("postgres", "postgresql", "pgsql", "sqlite"):
        raise ImproperlyConfigured(
            f"{name} must start with postgres:// or sqlite:/// (got {scheme + '://' if scheme else repr(url)})."
        )
    try:
        config = dj_database_url.parse(url, conn_max_age=envint("MFT_DB_CONN_MAX_AGE", 60, 0))
    except Exception as exc:  # the parser raises several types for malformed URLs
        raise ImproperlyConfigured(
            f"{name} is not a database URL the app can use ({exc}). Examples: "
            "postgres://user:password@host:5432/name or sqlite:///path/to/file.sqlite3"
        ) from None
    engine = config.get("ENGINE", "")
    if engine.endswith("sqlite3"):
        if not config.get("NAME") or config["NAME"] == ":memory:":
            raise ImproperlyConfigured(f"{name} must name a SQLite file: sqlite:///path/to/file.sqlite3")
        return _sqlite(config)
    if engine.endswith("postgresql"):
        if not config.get("NAME"):
            raise ImproperlyConfigured(f"{name} must name the database: postgres://user@host:5432/NAME")
        config["CONN_HEALTH_CHECKS"] = True
        return config
    scheme = url.split(":", 1)[0]
    raise ImproperlyConfigured(
        f"{name} uses '{scheme}', which the app does not support; use postgres:// or sqlite:///."
    )


def envcache(name: str) -> dict:
    """The cache every worker and instance shares: refusal memory, rate limits, throttling, OCSP backoff.

    Empty: a cache in each process's memory (the embedded default; limits then count per
    worker). ``redis://host:6379/0``, ``rediss://...`` or ``unix:///path/redis.sock``: Redis,
    through Django's own backend.
    """
    url = os.environ.get(name, "").strip()
    if not url:
        return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "mft"}
    scheme = urlsplit(url).scheme
    if scheme not in ("redis", "rediss", "unix"):
        raise ImproperlyConfigured(
            f"{name} must be a Redis URL such as redis://127.0.0.1:6379/0 (got {scheme + '://' if scheme else url!r})."
        )
    return {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url, "KEY_PREFIX": "mft"}


def private(path: Path, mode: int, what: str) -> None:
    """Close a file or folder the app keeps secrets in to other users: it holds session keys,
    password hashes and the encrypted org CA key. One the app cannot close stops start-up."""
    current = path.stat().st_mode & 0o777
    if current & 0o077 == 0:
        return
    try:
        os.chmod(path, mode)
    except OSError as exc:
        raise ImproperlyConfigured(
            f"{what.capitalize()} {path} is open to other users (mode {current:o}) and cannot be closed "
            f"({exc.strerror}); run: chmod {mode:o} {path}"
        ) from None
    sys.stderr.write(f"Closed {what} {path} to other users (it was mode {current:o}, now {mode:o}).\n")


def private_folder(path: Path, what: str) -> Path:
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ImproperlyConfigured(f"{what.capitalize()} {path} cannot be created ({exc.strerror}).") from None
    private(path, 0o700, what)
    return path


def _sqlite(config: dict) -> dict:
    # The database file is created readable by the app alone; SQLite gives its journal files
    # the same mode.
    database = Path(config["NAME"])
    try:
        database.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT, 0o600))
    except OSError as exc:
        raise ImproperlyConfigured(f"The database file {database} cannot be created ({exc.strerror}).") from None
    for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        if path.exists():
            private(path, 0o600, "the database file")
    # Several gunicorn workers share the file: wait for locks, take write locks up front.
    config["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    config["CONN_MAX_AGE"] = 0
    return config


DATA_DIR = private_folder(
    Path(envstr("MFT_DATA_DIR", str(BASE_DIR / "data"))).resolve(), "the data folder (MFT_DATA_DIR)"
)

SECRET_KEY = envsecret("MFT_SECRET_KEY", DATA_DIR / "secret-key")
# Encrypts the organisational CA's private key at rest. Losing it means issuing a new org CA.
KEY_ENCRYPTION_KEY = envsecret("MFT_KEY_ENCRYPTION_KEY", DATA_DIR / "key-encryption-key")

DEBUG = envbool("MFT_DEBUG", False)
ALLOWED_HOSTS = envlist("MFT_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = envlist("MFT_CSRF_TRUSTED_ORIGINS", "")

DATABASES = {"default": envdatabase("DATABASE_URL", DATA_DIR / "db.sqlite3")}
CACHES = {"default": envcache("MFT_CACHE_URL")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "crispy_forms",
    "crispy_bootstrap5",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "audit",
    "users",
    "certs",
    "signon",
    "files",
    "ftps",
    "api",
]

MIDDLEWARE = [
    "signon.middleware.ProxyGateMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "signon.middleware.ClientCertificateMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "mft.urls"
WSGI_APPLICATION = "mft.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

AUTH_USER_MODEL = "users.User"
# What a change of a user's sign-on mode would stop: the users app's policy page asks the
# certificate app through this name, so that imports run one way (signon -> certs -> users).
MODE_CHANGE_IMPACT = "certs.reports.impact_of_mode_change"
# What deleting a user removes with them, as each app that keeps something per user says it.
USER_DELETION_REPORTS = ["certs.reports.entries_of", "files.flows.files_of"]
AUTHENTICATION_BACKENDS = ["signon.backends.SignOnBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = envstr("MFT_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(envstr("MFT_STATIC_ROOT", str(DATA_DIR / "static")))
# Serve straight from the source folders when collectstatic has not been run.
WHITENOISE_USE_FINDERS = True

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = envbool("MFT_SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_AGE = envint("MFT_SESSION_SECONDS", 8 * 3600, 60)
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Browsers that reached the service over HTTPS keep to HTTPS (sent on HTTPS responses only).
SECURE_HSTS_SECONDS = envint("MFT_HSTS_SECONDS", 365 * 24 * 3600, 0)
# Pages load only the service's own scripts, styles and images: no inline script can run.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [csp.SELF],
        "script-src": [csp.SELF],
        "style-src": [csp.SELF],
        "img-src": [csp.SELF, "data:"],
        "font-src": [csp.SELF],
        "connect-src": [csp.SELF],
        "object-src": [csp.NONE],
        "base-uri": [csp.NONE],
        "form-action": [csp.SELF],
        "frame-ancestors": [csp.NONE],
    }
}

# Uploads: certificate files are small; refuse anything large before it reaches a form.
DATA_UPLOAD_MAX_MEMORY_SIZE = 6 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 6 * 1024 * 1024

# Client-certificate sign-on: how the front proxy forwards the certificate, and from where.
MFT_PROXY_FORMAT = envstr("MFT_PROXY_FORMAT", "nginx").strip().lower()
if MFT_PROXY_FORMAT not in proxy.FORMATS:
    raise ImproperlyConfigured(f"MFT_PROXY_FORMAT={MFT_PROXY_FORMAT!r} is not one of {', '.join(proxy.FORMATS)}.")
_default_headers = proxy.DEFAULT_HEADERS.get(MFT_PROXY_FORMAT, proxy.HeaderNames(""))
MFT_PROXY_HEADERS = proxy.HeaderNames(
    cert=envstr("MFT_PROXY_CERT_HEADER", _default_headers.cert).strip(),
    chain=envstr("MFT_PROXY_CHAIN_HEADER", _default_headers.chain or "").strip() or None,
    verify=envstr("MFT_PROXY_VERIFY_HEADER", _default_headers.verify or "").strip() or None,
)
try:
    # Exact addresses, never a whole range by default: any process that can connect from a
    # trusted address may say which certificate a client presented.
    MFT_TRUSTED_PROXIES = proxy.parse_proxies(envstr("MFT_TRUSTED_PROXIES", "127.0.0.1,::1"))
except ValueError as exc:
    raise ImproperlyConfigured(
        f"MFT_TRUSTED_PROXIES: {exc}; give addresses, networks or 'unix', comma-separated."
    ) from None
# Shared with the front proxy, which sends it in X-MFT-Proxy-Secret: with it set, certificate
# headers count only from a request that carries it (a local process cannot forge them).
MFT_PROXY_SECRET = envsecretfile("MFT_PROXY_SECRET")

# The built-in HTTPS server drops a client whose TLS handshake takes longer than this.
MFT_TLS_HANDSHAKE_SECONDS = envint("MFT_TLS_HANDSHAKE_SECONDS", 10, 1)

# Where clients and proxies reach the app (https://mft.example.com). Certificates the org CA
# issues name MFT_PUBLIC_URL + /crl/org-ca.crl as their CRL distribution point; unset, they name
# none. The org CA's CRL is valid for MFT_ORG_CA_CRL_DAYS and re-signed when half of that is gone.
MFT_PUBLIC_URL = envstr("MFT_PUBLIC_URL", "").strip().rstrip("/")
if MFT_PUBLIC_URL and not MFT_PUBLIC_URL.startswith(("https://", "http://")):
    raise ImproperlyConfigured(f"MFT_PUBLIC_URL={MFT_PUBLIC_URL!r} must start with https:// (or http://).")
MFT_ORG_CA_CRL_DAYS = envint("MFT_ORG_CA_CRL_DAYS", 7, 1)

# Certificates expiring within this many days are flagged (dashboard, end users' home, mail).
MFT_EXPIRY_WARNING_DAYS = envint("MFT_EXPIRY_WARNING_DAYS", 30, 1)

# Mail (the expiry warnings). With no MFT_EMAIL_HOST, messages go to the console (the log).
EMAIL_HOST = envstr("MFT_EMAIL_HOST", "")
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend"
)
EMAIL_PORT = envint("MFT_EMAIL_PORT", 25, 1)
EMAIL_HOST_USER = envstr("MFT_EMAIL_USER", "")
EMAIL_HOST_PASSWORD = envstr("MFT_EMAIL_PASSWORD", "")
EMAIL_USE_TLS = envbool("MFT_EMAIL_STARTTLS", False)
DEFAULT_FROM_EMAIL = envstr("MFT_EMAIL_FROM", "mft@localhost")

# Behind a proxy, HTTPS is what the proxy says (X-Forwarded-Proto), which only a configured
# proxy may say: ForwardedHeadersMiddleware removes the header from anyone else.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# How long a path-validation verdict is reused for the same certificate and configuration.
MFT_VERDICT_CACHE_SECONDS = envint("MFT_VERDICT_CACHE_SECONDS", 60, 0)

# How long sign-on waits for OCSP responders, in all, for one certificate (then: status unknown).
MFT_OCSP_TIMEOUT = envint("MFT_OCSP_TIMEOUT", 3, 1)
# How long an OCSP responder that could not be reached is left alone (status unknown at once):
# this many seconds after one failure, doubling with each failure in a row up to the maximum.
MFT_OCSP_BACKOFF_SECONDS = envint("MFT_OCSP_BACKOFF_SECONDS", 30, 1)
MFT_OCSP_BACKOFF_MAX_SECONDS = envint("MFT_OCSP_BACKOFF_MAX_SECONDS", 600, 1)

# The built-in servers' own certificate and key (HTTPS and FTPS share them): given, or generated
# once into the data folder's tls/ (as mft/gunicorn_builtin.py does).
MFT_TLS_CERT = envstr("MFT_TLS_CERT").strip()
MFT_TLS_KEY = envstr("MFT_TLS_KEY").strip()
if bool(MFT_TLS_CERT) != bool(MFT_TLS_KEY):
    raise ImproperlyConfigured("MFT_TLS_CERT and MFT_TLS_KEY go together: set both, or neither.")
MFT_TLS_DIR = Path(envstr("MFT_TLS_DIR", str(DATA_DIR / "tls")))

# Home folders: one subfolder per user, made on first use.
MFT_FILES_DIR = Path(envstr("MFT_FILES_DIR", str(DATA_DIR / "files"))).resolve()

# The FTPS server (manage.py ftpserver): explicit FTPS (AUTH TLS), implicit FTPS, passive ports.
MFT_FTPS_BIND = envaddress("MFT_FTPS_BIND", "127.0.0.1:2121")
MFT_FTPS_IMPLICIT_BIND = envaddress("MFT_FTPS_IMPLICIT_BIND", "off")
MFT_FTPS_PASSIVE_PORTS = envports("MFT_FTPS_PASSIVE_PORTS")
MFT_FTPS_MASQUERADE_ADDRESS = envstr("MFT_FTPS_MASQUERADE_ADDRESS").strip() or None
MFT_FTPS_MAX_CONNECTIONS = envint("MFT_FTPS_MAX_CONNECTIONS", 200, 1)
MFT_FTPS_MAX_CONNECTIONS_PER_ADDRESS = envint("MFT_FTPS_MAX_CONNECTIONS_PER_ADDRESS", 20, 1)
MFT_FTPS_IDLE_SECONDS = envint("MFT_FTPS_IDLE_SECONDS", 300, 10)
if MFT_FTPS_MASQUERADE_ADDRESS:
    try:
        MFT_FTPS_MASQUERADE_ADDRESS = str(ipaddress.ip_address(MFT_FTPS_MASQUERADE_ADDRESS))
    except ValueError:
        raise ImproperlyConfigured(
            f"MFT_FTPS_MASQUERADE_ADDRESS={MFT_FTPS_MASQUERADE_ADDRESS!r} is not an IP address."
        ) from None

LOG_LEVEL = envstr("MFT_LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
    raise ImproperlyConfigured(f"MFT_LOG_LEVEL={LOG_LEVEL!r} is not one of DEBUG, INFO, WARNING, ERROR, CRITICAL.")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
}

# The REST API (/api/v1/): certificate or token, JSON in and out, errors as problem documents.
MFT_API_RATE = envrate("MFT_API_RATE", "600/minute")
MFT_API_ANON_RATE = envrate("MFT_API_ANON_RATE", "60/minute")
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.auth.TokenAuthentication",
        "api.auth.CertificateAuthentication",
        "api.auth.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["api.auth.IsAdministrator"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["api.problems.JSONParser", "rest_framework.parsers.MultiPartParser"],
    "DEFAULT_THROTTLE_CLASSES": ["api.throttling.PerUser", "api.throttling.PerAddress"],
    "DEFAULT_THROTTLE_RATES": {"user": MFT_API_RATE, "anon": MFT_API_ANON_RATE},
    "EXCEPTION_HANDLER": "api.problems.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "MFT client-certificate API",
    "DESCRIPTION": "Users, sign-on policies, client certificates, trusted CAs, holding tanks and the audit log.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "OAS_VERSION": "3.1.0",
    "ENUM_NAME_OVERRIDES": {
        "SignOnModeEnum": "users.models.SignOnMode",
        "InterfaceEnum": "users.models.Interface",
        "CredentialKindEnum": "certs.models.CredentialKind",
        "TankKindEnum": "certs.models.TankKind",
    },
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
MESSAGE_TAGS = {}
