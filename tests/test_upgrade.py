"""Admins' data survives the upgrade: a database from the previous release, migrated, every row found again.

The database is built with the previous release's migrations only, filled through that
release's historical models (``tests/upgrade_data.py``), then migrated with ``manage.py
migrate`` as an upgrade would, and read back through the command line. On SQLite by default,
on a fresh PostgreSQL database when DATABASE_URL names one (CI runs both).
"""

import json
import os
import subprocess
import sys

import pytest

from tests.e2e import ROOT, Database
from tests.upgrade_data import PREVIOUS_RELEASE


class Upgraded:
    def __init__(self, tmp_path):
        self.folder = tmp_path
        self.database = Database(tmp_path)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("MFT_", "DJANGO_", "DATABASE_URL"))}
        self.env.update(
            {
                "MFT_DATA_DIR": str(tmp_path / "data"),
                "DATABASE_URL": self.database.url,
                "DJANGO_SETTINGS_MODULE": "mft.settings",
                "MFT_LOG_LEVEL": "WARNING",
                "MFT_KEY_ENCRYPTION_KEY": "upgrade-test-key-encryption-key-0123456789",
            }
        )

    def run(self, *args) -> str:
        result = subprocess.run(
            [sys.executable, *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=180
        )
        assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def manage(self, *args) -> str:
        return self.run("manage.py", *args)

    def json(self, *args):
        return json.loads(self.manage(*args, "--json"))


@pytest.fixture(scope="module")
def upgraded(tmp_path_factory):
    db = Upgraded(tmp_path_factory.mktemp("upgrade"))
    try:
        for app, migration in PREVIOUS_RELEASE:
            db.manage("migrate", app, migration, "--noinput", "-v0")
        code = f"import django; django.setup(); from tests.upgrade_data import fill; fill({str(db.folder)!r})"
        db.written = json.loads(db.run("-c", code))
        db.migrate_output = db.manage("migrate", "--noinput")
        yield db
    finally:
        db.database.drop()


def test_the_upgrade_applies_the_layout_migrations(upgraded):
    assert "Applying users.0005_move_audit_log... OK" in upgraded.migrate_output
    assert "Applying audit.0001_initial... OK" in upgraded.migrate_output


def test_every_user_is_found_with_its_modes(upgraded):
    users = {u["username"]: u for u in upgraded.json("users", "list")}
    assert sorted(users) == upgraded.written["users"]
    assert users["rich"]["https_mode"] == "cert" and users["rich"]["ftps_mode"] == "cert-or-password"
    assert users["alice"]["is_admin"] and users["alice"]["email"] == "alice@example.com"
    assert users["Bob.Smith"]["full_name"] == "Bob Smith"
    assert not users["gone"]["is_active"]
    assert "https: cert-or-password" in upgraded.manage("users", "defaults")


def test_every_store_entry_is_found(upgraded):
    for area in ("roots", "intermediates", "cas"):
        found = sorted(c["thumbprint"] for c in upgraded.json("certs", area, "list"))
        assert found == upgraded.written[area], area
    roots = upgraded.json("certs", "roots", "list")
    assert {r["added_by"] for r in roots} == {"alice"}
    assert "is on" in upgraded.manage("certs", "match-cn")


def test_every_profile_entry_is_found(upgraded):
    for username, values in upgraded.written["credentials"].items():
        entries = upgraded.json("certs", "user", username, "list")
        assert sorted(e["value"] for e in entries) == values
        assert {e["added_by"] for e in entries} == {"command line (root)"}
        assert {e["remove_at"] for e in entries} == {None}  # none is replaced by a renewal


def test_every_tank_entry_is_found(upgraded):
    entries = upgraded.json("certs", "tank", "list")
    assert sorted((e["user"] or "", e["kind"], e["attempts"]) for e in entries) == [
        tuple(item) for item in upgraded.written["tank"]
    ]
    assert {e["source_address"] for e in entries} == {"192.0.2.7"}
    assert {e["renewal_of"] for e in entries} == {None}


def test_every_certificate_is_found_by_its_key(upgraded):
    code = (
        "import django; django.setup(); from certs.models import Certificate; "
        "from certs.x509 import public_key_sha256; "
        "print(all(c.key_sha256 == public_key_sha256(c.to_x509()) != '' for c in Certificate.objects.all()))"
    )
    assert upgraded.run("-c", code).strip() == "True"


def test_the_org_ca_is_found_and_still_signs(upgraded):
    assert upgraded.json("certs", "org-ca", "show")["thumbprint"] == upgraded.written["org_ca"]
    password = upgraded.folder / "p12.pw"
    password.write_text("a long enough password\n")
    out = upgraded.folder / "rich.p12"
    said = upgraded.manage("certs", "issue", "rich", "--out", str(out), "--password-file", str(password))
    assert "Issued 'rich'" in said and out.stat().st_size > 0


def test_every_audit_entry_is_found(upgraded):
    events = upgraded.json("audit", "list", "--limit", "1000")
    written = upgraded.written["audit"]
    found = [
        {k: e[k] for k in ("action", "summary", "actor", "target", "repeats", "detail")}
        for e in events
        if e["summary"] in {w["summary"] for w in written}
    ]
    assert sorted(found, key=lambda e: e["summary"]) == sorted(written, key=lambda e: e["summary"])


def test_the_trust_configuration_judges_as_before(upgraded):
    verdict = upgraded.json("certs", "check", str(upgraded.folder / "frank.pem"))
    assert verdict["category"] == "authenticates"
    assert verdict["authenticate"]["user"] == "rich" and verdict["authenticate"]["rule"] == "thumbprint"
    # Bob's thumbprint entry and rich's CN "Dick" both concern the Dick certificate.
    verdict = upgraded.json("certs", "check", str(upgraded.folder / "dick.pem"), "--user", "Bob.Smith")
    assert verdict["authenticate"]["rule"] == "thumbprint"
