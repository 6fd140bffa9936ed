"""The `users` and `certs` management commands: what they print, change and refuse."""

import json
from io import StringIO
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, Encoding, pkcs12
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from certs import flows, tank, verdicts
from certs.loading import load_certificates
from certs.models import Credential, Store, StoreEntry, TankEntry
from certs.x509 import format_thumbprint, sha1_thumbprint
from tests.conftest import ACTOR, install
from tests.pki import make_client
from users.models import User

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue() + err.getvalue()


def refused(*args) -> str:
    with pytest.raises(CommandError) as caught:
        run(*args)
    assert caught.value.returncode == 2
    return str(caught.value)


@pytest.fixture
def files(tmp_path, spec):
    def write(name, data):
        path = tmp_path / name
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
        return str(path)

    return write


# --- users -----------------------------------------------------------------------------------


def test_users_add_creates_a_user_with_the_default_modes(files):
    password = files("pw", "a long enough passphrase\n")
    out = run(
        "users",
        "add",
        "Rich",
        "--full-name",
        "Rich Richards",
        "--email",
        "rich@example.com",
        "--password-file",
        password,
    )
    assert out.strip() == "Created user 'Rich' (HTTPS: password, FTPS: password, with a password)."
    user = User.objects.get(username="Rich")
    assert user.check_password("a long enough passphrase")
    assert AuditEvent.objects.filter(action="user.create", target_user=user).exists()


def test_users_add_refuses_a_username_taken_in_another_case(rich):
    assert refused("users", "add", "RICH") == "Username: The username 'RICH' is already taken."


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bad name!"], "Enter a valid username"),
        (["ok", "--email", "not-an-email"], "Email: Enter a valid email address."),
        ([""], "This field cannot be blank"),
    ],
)
def test_users_add_explains_bad_values(args, message):
    assert message in refused("users", "add", *args)
    assert not User.objects.exists()


def test_users_add_refuses_a_weak_password(files):
    assert "too short" in refused("users", "add", "weak", "--password-file", files("pw", "abc"))


def test_users_add_refuses_an_empty_or_missing_password_file(files, tmp_path):
    assert refused("users", "add", "x", "--password-file", files("pw", "")).endswith("the password file is empty.")
    assert refused("users", "add", "x", "--password-file", str(tmp_path / "nope")).endswith("no such file.")


def test_users_policy_sets_one_interface(rich):
    out = run("users", "policy", "rich", "--interface", "https", "--mode", "cert")
    assert out.strip() == "Set rich's HTTPS sign-on mode to “Client certificate required” (was “Password only”)."
    rich.refresh_from_db()
    assert (rich.https_mode, rich.ftps_mode) == ("cert", "password")
    assert run("users", "policy", "rich", "--interface", "https", "--mode", "cert").strip() == (
        "rich's HTTPS sign-on mode is already “Client certificate required”."
    )


def test_users_policy_refuses_unknown_users_and_modes(rich):
    assert (
        refused("users", "policy", "nobody", "--interface", "https", "--mode", "cert") == "There is no user 'nobody'."
    )
    with pytest.raises(CommandError, match="invalid choice"):
        run("users", "policy", "rich", "--interface", "https", "--mode", "sometimes")


def test_users_list_json(rich, alice):
    data = json.loads(run("users", "list", "--json"))
    assert [u["username"] for u in data] == ["alice", "rich"]
    assert data[1] == {
        "username": "rich",
        "full_name": "Rich",
        "email": "rich@example.com",
        "is_active": True,
        "is_admin": False,
        "https_mode": "password",
        "ftps_mode": "password",
        "date_joined": data[1]["date_joined"],
    }
    assert "alice" in run("users", "list")


def test_users_defaults_apply_to_new_users():
    assert run("users", "defaults", "--interface", "ftps", "--mode", "cert-and-password").strip() == (
        "New users now get FTPS sign-on mode “Client certificate and password”."
    )
    assert "ftps: cert-and-password" in run("users", "defaults")
    run("users", "add", "newbie")
    assert User.objects.get(username="newbie").ftps_mode == "cert-and-password"


def test_users_set_password(rich, files):
    run("users", "set-password", "rich", "--password-file", files("pw", "another fine passphrase"))
    rich.refresh_from_db()
    assert rich.check_password("another fine passphrase")


# --- certs: the stores -------------------------------------------------------------------


def test_roots_add_list_remove(spec, files):
    bundle = files("roots.pem", spec.toot.pem + spec.verisign.pem)
    out = run("certs", "roots", "add", bundle)
    toot = format_thumbprint(sha1_thumbprint(spec.toot.cert))
    assert f"Added 'Toot' ({toot}) to the trusted root store." in out
    assert "export-roots" in out
    assert "is already in the trusted root store" in run("certs", "roots", "add", bundle)
    listed = json.loads(run("certs", "roots", "list", "--json"))
    assert {(r["subject"], r["thumbprint"]) for r in listed} >= {("CN=Toot", toot)}
    assert set(listed[0]) >= {"subject", "issuer", "thumbprint", "sha256", "not_after", "added_by", "added_at"}
    colon_notation = ":".join(toot.replace(" ", "")[i : i + 2] for i in range(0, 40, 2)).lower()
    assert run("certs", "roots", "remove", colon_notation).splitlines() == [
        f"Removed 'Toot' ({toot}) from the trusted root store.",
        "warning: Re-export the front proxy's client CA bundle (download it from the root store page, or run "
        "manage.py certs export-roots FILE) and reload the proxy.",
    ]
    assert (
        refused("certs", "roots", "remove", toot)
        == f"No certificate with thumbprint {toot} is in the trusted root store."
    )
    assert AuditEvent.objects.filter(action="root.remove").count() == 1


def test_a_client_certificate_cannot_be_an_intermediate_or_approved_ca(spec, files):
    path = files("mixed.pem", spec.chug.pem + spec.frank.pem)
    for area in ("intermediates", "cas"):
        message = refused("certs", area, "add", path)
        assert "'Frank' is not a CA certificate" in message and "Nothing was changed." in message
    assert not StoreEntry.objects.exists()


def test_cas_add_list_remove(spec, files):
    run("certs", "cas", "add", files("chug.pem", spec.chug.pem))
    assert [c["subject"] for c in json.loads(run("certs", "cas", "list", "--json"))] == ["CN=Chug and Ring"]
    assert "Chug and Ring" in run("certs", "cas", "list")
    run("certs", "cas", "remove", sha1_thumbprint(spec.chug.cert))
    assert run("certs", "cas", "list").strip() == "Approved CA list is empty."


def test_store_commands_refuse_bad_files(files, tmp_path):
    assert refused("certs", "roots", "add", files("empty.pem", b"")).endswith("The file is empty.")
    assert refused("certs", "roots", "add", str(tmp_path)).endswith("is a directory, not a file.")
    assert "no such file" in refused("certs", "roots", "add", str(tmp_path / "missing.pem"))
    assert "Thumbprint" not in refused("certs", "roots", "remove", "xyz")


def test_match_cn_on_off_and_status(db):
    assert run("certs", "match-cn").strip() == "Match Cert CN to Username/Full Name is off."
    assert run("certs", "match-cn", "on").strip() == "Turned Match Cert CN to Username/Full Name on."
    assert run("certs", "match-cn", "on").strip() == "Match Cert CN to Username/Full Name is already on."
    assert run("certs", "match-cn").strip() == "Match Cert CN to Username/Full Name is on."


def test_export_roots_writes_a_bundle_the_proxy_can_read(spec, files, tmp_path):
    install(Store.ROOT, spec.toot, spec.chug)
    target = tmp_path / "roots.pem"
    assert run("certs", "export-roots", str(target)).strip() == f"Wrote 2 trusted root certificates to {target}."
    assert load_certificates(target.read_bytes()) == [spec.toot.cert, spec.chug.cert]
    assert "BEGIN CERTIFICATE" in run("certs", "export-roots", "-")


def test_export_roots_warns_when_the_store_is_empty(tmp_path):
    out = run("certs", "export-roots", str(tmp_path / "roots.pem"))
    assert "warning: The trusted root store is empty" in out


# --- certs: a user's profile -------------------------------------------------------------


def test_user_add_thumbprint_in_colon_notation_and_list(rich):
    out = run("certs", "user", "rich", "add-thumbprint", "3d:17:cf:f3:e2:7b:12:7d:27:53:a7:f1:87:3e:27:43:78:3b:fb:d2")
    assert "Added thumbprint 3D17 CFF3 E27B 127D 2753 A7F1 873E 2743 783B FBD2 to rich's profile" in out
    assert "already on rich's profile" in run(
        "certs", "user", "rich", "add-thumbprint", "3D17CFF3E27B127D2753A7F1873E2743783BFBD2"
    )
    (entry,) = json.loads(run("certs", "user", "rich", "list", "--json"))
    assert entry["kind"] == "thumbprint"
    assert entry["value"] == "3D17 CFF3 E27B 127D 2753 A7F1 873E 2743 783B FBD2"
    assert entry["added_by"].startswith("command line")


def test_user_add_thumbprint_explains_a_bad_thumbprint(rich):
    assert refused("certs", "user", "rich", "add-thumbprint", "3D17") == (
        "A thumbprint has 40 hexadecimal digits; this one has 4."
    )


def test_user_add_cn_warns_without_approved_cas(rich):
    out = run("certs", "user", "rich", "add-cn", "Dick")
    assert "Added CN 'Dick' to rich's profile" in out
    assert "approved CA list is empty" in out


def test_user_import_records_thumbprint_and_cn_when_the_issuer_is_approved(spec, rich, files, toot_installed):
    install(Store.APPROVED, spec.chug)
    out = run(
        "certs", "user", "rich", "import", files("frank-chain.pem", spec.frank.pem + spec.chug.pem), "--as", "both"
    )
    assert "recorded thumbprint and CN on rich's profile" in out
    assert "Not put on the profile (CA certificates in the file): 'Chug and Ring'." in out
    assert set(Credential.objects.filter(user=rich).values_list("kind", "value")) == {
        ("thumbprint", sha1_thumbprint(spec.frank.cert)),
        ("cn", "Frank"),
    }


def test_user_import_explains_an_unapproved_issuer(spec, rich, files, toot_installed):
    out = run("certs", "user", "rich", "import", files("frank.der", spec.frank.der))
    assert "recorded thumbprint on rich's profile" in out
    assert set(Credential.objects.filter(user=rich).values_list("kind", flat=True)) == {"thumbprint"}
    out = run("certs", "user", "rich", "import", files("frank.der", spec.frank.der), "--as", "cn")
    assert "The CN authenticates only once its CA is approved: issuer 'Chug and Ring' is not on the approved" in out


def test_user_import_of_a_self_signed_certificate_suggests_installing_it(rich, files, toot_installed):
    selfie = make_client("Rich's laptop")
    out = run("certs", "user", "rich", "import", files("laptop.pem", selfie.pem))
    assert "self-signed: it can connect only once it is installed in the trusted root store" in out


def test_user_import_of_a_pkcs12_needs_its_password(spec, rich, files):
    p12 = pkcs12.serialize_key_and_certificates(
        b"f", spec.frank.key, spec.frank.cert, None, BestAvailableEncryption(b"pw")
    )
    path = files("frank.p12", p12)
    assert refused("certs", "user", "rich", "import", path).endswith(
        "This PKCS#12 file is protected: give its password."
    )
    assert "recorded thumbprint" in run("certs", "user", "rich", "import", path, "--password-file", files("pw", "pw"))


def test_user_remove(rich):
    credential, _ = flows.add_cn(rich, "Dick", ACTOR)
    assert run("certs", "user", "rich", "remove", str(credential.pk)).strip() == "Removed CN Dick from rich's profile."
    assert refused("certs", "user", "rich", "remove", str(credential.pk)) == (
        f"rich's profile has no certificate entry with id {credential.pk}."
    )


def test_user_commands_refuse_unknown_users():
    assert refused("certs", "user", "ghost", "list") == "There is no user 'ghost'."


# --- certs: the holding tank -------------------------------------------------------------


def test_tank_list_accept_remove(spec, rich, toot_installed):
    verdict = verdicts.judge(spec.frank.cert, username="rich")
    tank.record_presentation(verdict, spec.frank.cert, "rich", "https", "192.0.2.1")
    entries = json.loads(run("certs", "tank", "list", "--json"))
    assert sorted(e["kind"] for e in entries) == ["cn", "thumbprint"]
    assert set(entries[0]) >= {
        "id",
        "user",
        "kind",
        "value",
        "first_seen",
        "last_seen",
        "attempts",
        "interface",
        "source_address",
    }
    cn_entry = next(e for e in entries if e["kind"] == "cn")
    assert run("certs", "tank", "accept", str(cn_entry["id"])).strip() == "Accepted CN Frank into rich's profile."
    other = next(e for e in entries if e["kind"] == "thumbprint")
    assert "Removed thumbprint" in run("certs", "tank", "remove", str(other["id"]))
    assert run("certs", "tank", "list").strip() == "The holding tank is empty."
    assert not TankEntry.objects.exists()


def test_tank_accept_of_an_org_entry_names_the_user(spec, rich, toot_installed):
    verdict = verdicts.judge(spec.frank.cert)
    (entry,) = tank.record_presentation(verdict, spec.frank.cert, None, "https", None)
    assert "choose the user" in refused("certs", "tank", "accept", str(entry.pk))
    assert json.loads(run("certs", "tank", "list", "--org", "--json"))[0]["user"] is None
    out = run("certs", "tank", "accept", str(entry.pk), "--user", "rich", "--as", "cn")
    assert out.strip() == "Accepted CN Frank into rich's profile."


# --- certs: the org CA, issuing, checking -----------------------------------------------


def test_org_ca_create_issue_and_check(rich, files, tmp_path):
    out = run("certs", "org-ca", "create", "--cn", "Example Org CA")
    assert "Created the org CA 'Example Org CA'" in out
    assert "to the trusted root store" in out and "to the approved CA list" in out
    assert "There is an org CA already" in refused("certs", "org-ca", "create", "--cn", "Another")
    assert json.loads(run("certs", "org-ca", "show", "--json"))["subject"] == "CN=Example Org CA"

    target = tmp_path / "rich.p12"
    out = run(
        "certs",
        "issue",
        "rich",
        "--out",
        str(target),
        "--password-file",
        files("pw", "p12 password"),
        "--days",
        "90",
        "--key",
        "rsa-2048",
    )
    assert f"Wrote the PKCS#12 file (certificate, private key and CA chain) to {target}." in out
    assert target.stat().st_mode & 0o077 == 0  # readable by its owner only
    bundle = pkcs12.load_pkcs12(target.read_bytes(), b"p12 password")
    cert_path = files("rich.der", bundle.cert.certificate.public_bytes(Encoding.DER))
    verdict = json.loads(run("certs", "check", cert_path, "--json"))
    assert verdict["category"] == "authenticates"
    assert verdict["authenticate"]["user"] == "rich"
    assert verdict["authenticate"]["rule"] == "thumbprint"

    assert "exists already" in refused(
        "certs", "issue", "rich", "--out", str(target), "--password-file", files("pw", "x")
    )


def test_issue_without_an_org_ca_leaves_no_file_behind(rich, files, tmp_path):
    target = tmp_path / "rich.p12"
    assert "no org CA yet" in refused(
        "certs", "issue", "rich", "--out", str(target), "--password-file", files("pw", "x")
    )
    assert not target.exists()


def test_check_json_has_the_documented_shape(spec, rich, files, toot_installed):
    flows.add_cn(rich, "Frank", ACTOR)
    data = json.loads(run("certs", "check", files("frank.pem", spec.frank.pem), "--user", "rich", "--json"))
    assert set(data) == {"category", "category_text", "connect", "authenticate"}
    assert data["category"] == "connects_only"
    assert set(data["connect"]) == {"ok", "reason", "chain", "anchor", "revocation"}
    assert [link["subject"] for link in data["connect"]["chain"]] == ["CN=Frank", "CN=Chug and Ring", "CN=Toot"]
    # One revocation status per certificate on the path; the org default checks nothing.
    assert [r["status"] for r in data["connect"]["revocation"]] == ["not_checked"] * 3
    assert set(data["connect"]["revocation"][0]) == {
        "thumbprint",
        "status",
        "source",
        "this_update",
        "next_update",
        "reason",
    }
    assert data["connect"]["anchor"] == {
        "subject": "CN=Toot",
        "thumbprint": format_thumbprint(sha1_thumbprint(spec.toot.cert)),
    }
    assert data["authenticate"] == {
        "ok": False,
        "user": None,
        "rule": None,
        "reasons": [
            f"Thumbprint {format_thumbprint(sha1_thumbprint(spec.frank.cert))} is not on rich's profile.",
            "CN 'Frank' is on rich's profile, but issuer 'Chug and Ring' is not on the approved CA list.",
            "The Match Cert CN to Username/Full Name option is off.",
        ],
    }


def test_check_takes_a_chain_file_and_exits_zero_when_refused(spec, files):
    install(Store.ROOT, spec.toot)
    chain = files("chain.p7b", spec.chug.pem)
    data = json.loads(run("certs", "check", files("frank.pem", spec.frank.pem), "--chain", chain, "--json"))
    assert data["connect"]["ok"]
    data = json.loads(run("certs", "check", files("stranger.pem", spec.stranger.pem), "--json"))
    assert data["category"] == "cannot_connect"
    assert data["connect"]["anchor"] is None


def test_check_readable_output(spec, files, toot_installed):
    out = run("certs", "check", files("frank.pem", spec.frank.pem))
    assert out.startswith("Certificate: CN=Frank\n  Thumbprint ")
    assert "\nVerdict: Can connect but not authenticate\nConnect: yes. 'Frank' chains up" in out
    assert "  SHA-256 " in out
    assert "trust anchor)" in out and "Authenticate: no." in out
    assert "in the trusted root store" in out and "^ signature verified" in out


def test_check_refuses_bad_input_with_status_2(files, spec):
    assert "private key" in refused("certs", "check", files("key.pem", spec.frank.key_pem))
    assert (
        refused("certs", "check", files("frank.pem", spec.frank.pem), "--user", "ghost") == "There is no user 'ghost'."
    )


def test_commands_never_write_what_they_refuse(spec, files):
    before = (StoreEntry.objects.count(), AuditEvent.objects.count())
    refused("certs", "cas", "add", files("frank.pem", spec.frank.pem))
    assert (StoreEntry.objects.count(), AuditEvent.objects.count()) == before


def test_readme_documents_every_command():
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    for line in [
        "manage.py users add USERNAME",
        "manage.py users policy USERNAME",
        "manage.py certs roots add FILE",
        "manage.py certs check CERT_FILE",
        "manage.py certs export-roots FILE",
        "manage.py certs issue USERNAME",
        "manage.py certs revocation set [--ca THUMBPRINT] --check off|crl|ocsp|crl+ocsp",
    ]:
        assert line in readme


# --- audit -------------------------------------------------------------------------------------


def test_audit_list_polls_after_an_id_and_filters_by_user(alice, rich, spec):
    flows.add_thumbprint(rich, sha1_thumbprint(spec.frank.cert), alice)
    flows.add_cn(rich, "Dick", alice)
    events = json.loads(run("audit", "list", "--json"))
    assert [e["action"] for e in events][-2:] == ["credential.add", "credential.add"]
    assert events[-1]["actor"] == "alice" and events[-1]["target"] == "rich"
    assert set(events[-1]) == {
        "id",
        "at",
        "actor",
        "action",
        "summary",
        "target",
        "source_address",
        "detail",
        "repeats",
        "last_at",
    }
    newer = json.loads(run("audit", "list", "--json", "--after-id", str(events[-2]["id"])))
    assert [e["summary"] for e in newer] == [events[-1]["summary"]]
    assert json.loads(run("audit", "list", "--json", "--user", "charlie")) == []
    assert "Added CN Dick to rich's profile." in run("audit", "list", "--user", "rich", "--limit", "1")
    assert refused("audit", "list", "--limit", "0") == "--limit must be at least 1."
