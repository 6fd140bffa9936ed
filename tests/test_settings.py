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
