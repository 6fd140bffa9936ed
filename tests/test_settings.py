"""Settings from the environment: safe defaults, and a clear stop for a value that cannot be used.

These start real processes, since settings are read once at start-up.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def manage(*args, env=None, data_dir=None):
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("MFT_", "DATABASE_URL", "DJANGO_"))}
    environment["MFT_DATA_DIR"] = str(data_dir)
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_with_nothing_set_it_runs_on_sqlite_with_generated_secrets(tmp_path):
    result = manage("migrate", "-v0", data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "db.sqlite3").exists()
    secret = (tmp_path / "secret-key").read_text().strip()
    assert len(secret) >= 50
    assert (tmp_path / "secret-key").stat().st_mode & 0o077 == 0
    assert (tmp_path / "key-encryption-key").stat().st_mode & 0o077 == 0
    # The secret is generated once and kept.
    assert manage("check", data_dir=tmp_path).returncode == 0
    assert (tmp_path / "secret-key").read_text().strip() == secret


def test_database_url_selects_another_sqlite_file(tmp_path):
    other = tmp_path / "elsewhere" / "other.sqlite3"
    other.parent.mkdir()
    result = manage("migrate", "-v0", env={"DATABASE_URL": f"sqlite:///{other}"}, data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    assert other.exists()
    assert not (tmp_path / "db.sqlite3").exists()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DATABASE_URL": "mysql://root@localhost/mft"}, "DATABASE_URL must start with postgres:// or sqlite:///"),
        ({"DATABASE_URL": "not a url"}, "DATABASE_URL must start with postgres:// or sqlite:/// (got 'not a url')"),
        ({"DATABASE_URL": "postgres://u@h:notaport/db"}, "DATABASE_URL is not a database URL the app can use"),
        ({"DATABASE_URL": "postgres://user@host:5432"}, "DATABASE_URL must name the database"),
        ({"MFT_DEBUG": "maybe"}, "MFT_DEBUG='maybe' is not a yes/no value"),
        ({"MFT_SESSION_SECONDS": "ten"}, "MFT_SESSION_SECONDS='ten' is not a whole number"),
        ({"MFT_SECRET_KEY": "short"}, "MFT_SECRET_KEY is set but shorter than 32 characters"),
        ({"MFT_LOG_LEVEL": "LOUD"}, "MFT_LOG_LEVEL='LOUD' is not one of"),
        ({"MFT_TRUSTED_PROXIES": "127.0.0.1,10.0.0.0/33"}, "'10.0.0.0/33' is neither an IP address, a network nor"),
        ({"MFT_PROXY_SECRET": "short"}, "MFT_PROXY_SECRET is shorter than 32 characters"),
        ({"MFT_API_RATE": "lots"}, "MFT_API_RATE='lots' is not a rate"),
        ({"MFT_API_ANON_RATE": "0/minute"}, "MFT_API_ANON_RATE='0/minute' is not a rate"),
        (
            {"MFT_PROXY_SECRET": "x" * 40, "MFT_PROXY_SECRET_FILE": "/x"},
            "Set MFT_PROXY_SECRET or MFT_PROXY_SECRET_FILE",
        ),
        (
            {"MFT_PROXY_SECRET_FILE": "/nonexistent/secret"},
            "MFT_PROXY_SECRET_FILE='/nonexistent/secret' cannot be read",
        ),
        (
            {"DATABASE_URL": "sqlite:////proc/mft/db.sqlite3"},
            "The database file /proc/mft/db.sqlite3 cannot be created",
        ),
    ],
)
def test_a_bad_value_stops_start_up_naming_the_variable(tmp_path, env, message):
    result = manage("check", env=env, data_dir=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("Configuration error: ")
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_command_refusal_is_one_line_on_stderr_with_status_2(tmp_path):
    assert manage("migrate", "-v0", data_dir=tmp_path).returncode == 0
    result = manage("certs", "roots", "add", str(tmp_path / "missing.pem"), data_dir=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().endswith("missing.pem: no such file.")
    usage = manage("certs", "roots", data_dir=tmp_path)
    assert usage.returncode == 2
    assert "Traceback" not in usage.stderr


def test_the_data_folder_and_database_are_closed_to_other_users(tmp_path):
    """A data folder that existed with mode 755 once left the database readable by every local
    user, who could read session keys and replay an administrator's session."""
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    (data / "db.sqlite3").touch(mode=0o644)
    (data / "db.sqlite3").chmod(0o644)
    result = manage("migrate", "-v0", data_dir=data)
    assert result.returncode == 0, result.stderr
    assert "Closed the data folder (MFT_DATA_DIR)" in result.stderr
    assert data.stat().st_mode & 0o777 == 0o700
    assert (data / "db.sqlite3").stat().st_mode & 0o777 == 0o600
    for journal in data.glob("db.sqlite3-*"):
        assert journal.stat().st_mode & 0o077 == 0


def test_a_new_data_folder_and_database_are_private(tmp_path):
    data = tmp_path / "fresh"
    assert manage("migrate", "-v0", data_dir=data).returncode == 0
    assert data.stat().st_mode & 0o777 == 0o700
    assert (data / "db.sqlite3").stat().st_mode & 0o777 == 0o600


def test_a_proxy_secret_can_come_from_a_file(tmp_path):
    secret = tmp_path / "proxy-secret"
    secret.write_text("a-secret-long-enough-to-be-accepted-0123456789\n")
    result = manage(
        "shell",
        "-v0",
        "-c",
        "from django.conf import settings; print(settings.MFT_PROXY_SECRET)",
        env={"MFT_PROXY_SECRET_FILE": str(secret)},
        data_dir=tmp_path / "d",
    )
    assert result.stdout.strip() == "a-secret-long-enough-to-be-accepted-0123456789"


def test_the_trusted_proxies_default_to_exact_loopback_addresses(tmp_path):
    code = "from django.conf import settings; p = settings.MFT_TRUSTED_PROXIES; print('127.0.0.2' in p, '::1' in p)"
    assert manage("shell", "-v0", "-c", code, data_dir=tmp_path).stdout.split() == ["False", "True"]
