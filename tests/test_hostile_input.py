"""Input meant to break things: names that smuggle text, names that collide, files that never end."""

import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from certs import flows, verdicts
from certs.flows import FlowError
from certs.forms import AddCredentialForm, CreateCertificateForm
from certs.loading import CertificateLoadError, load_certificates
from certs.models import Credential, Store
from certs.org_ca import create as create_org_ca
from certs.org_ca import issue_certificate
from certs.x509 import sha256_fingerprint
from tests.conftest import ACTOR, install
from tests.pki import DAY, NOW, make_cert, make_client, make_root
from users.models import User

pytestmark = pytest.mark.django_db


def self_signed_with_subject(*attributes):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(oid, value, _validate=False) for oid, value in attributes])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - DAY)
        .not_valid_after(NOW + DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


def test_a_name_cannot_smuggle_another_root_into_the_proxy_bundle():
    hidden = make_root("Hidden Root").pem.decode()
    partner = self_signed_with_subject(
        (NameOID.COMMON_NAME, "Partner Root"), (NameOID.ORGANIZATION_NAME, "x\n" + hidden)
    )
    flows.add_to_store(Store.ROOT, [partner], ACTOR)
    bundle, count = flows.export_roots()
    assert count == 1
    assert [sha256_fingerprint(c) for c in load_certificates(bundle.encode())] == [sha256_fingerprint(partner)]
    assert "\n-----BEGIN CERTIFICATE-----" not in bundle.split("\n#", 1)[0] or bundle.count("BEGIN CERTIFICATE") == 1


@pytest.mark.filterwarnings("ignore:Attribute's length")
@pytest.mark.parametrize("cn", ["nul\x00inside", "L" * 600, "\u00df" * 300])
def test_hostile_cns_are_stored_and_imported_without_a_database_error(rich, spec, cn):
    root = self_signed_with_subject((NameOID.COMMON_NAME, cn))
    flows.add_to_store(Store.ROOT, [root], ACTOR)
    imported, _ = flows.import_to_profile(rich, [root], ACTOR)
    assert imported[0].thumbprint_added
    assert not imported[0].cn_added


def test_case_folding_that_lengthens_a_name_still_fits():
    user = User.objects.create_user("\u00df" * 150, full_name="\ufb03" * 200)
    assert len(user.username_key) == 300
    flows.add_cn(user, "\u00df" * 256, ACTOR)
    assert Credential.objects.get().key == "ss" * 256


def test_a_full_name_cannot_be_another_users_username(rich):
    with pytest.raises(ValidationError, match="is the username of user 'rich'"):
        User.objects.create_user("mallory", full_name="RICH")


def test_a_username_cannot_be_another_users_full_name(rich):
    User.objects.create_user("fjones", full_name="Frank")
    with pytest.raises(ValidationError, match="is the full name of user 'fjones'"):
        User.objects.create_user("frank")


def test_a_user_may_have_their_own_username_as_full_name():
    assert User.objects.create_user("rich2", full_name="Rich2").full_name == "Rich2"


@pytest.fixture
def org_ca(db):
    return create_org_ca("Org CA", ACTOR)[0]


def test_the_org_ca_will_not_sign_a_cn_that_names_another_user(org_ca, rich, charlie):
    with pytest.raises(FlowError, match="The CN 'Charlie' is the username of user 'charlie'"):
        issue_certificate(rich, ACTOR, password="pw", cn="Charlie")
    with pytest.raises(FlowError, match="is the full name of user 'charlie'"):
        issue_certificate(rich, ACTOR, password="pw", cn="charlie outsider")
    flows.add_cn(charlie, "Chaz", ACTOR)
    with pytest.raises(FlowError, match="is on charlie's profile"):
        issue_certificate(rich, ACTOR, password="pw", cn="chaz")
    assert not Credential.objects.filter(user=rich).exists()


def test_a_certificate_for_the_user_under_their_own_name_is_fine(org_ca, rich):
    assert issue_certificate(rich, ACTOR, password="pw", cn="Rich").certificate.common_name == "Rich"


def test_a_file_that_never_ends_is_refused(tmp_path):
    with pytest.raises(CommandError, match="larger than"):
        call_command("certs", "check", "/dev/zero")


def test_export_roots_will_not_replace_a_device(tmp_path, spec):
    install(Store.ROOT, spec.toot)
    with pytest.raises(CommandError, match="is not a regular file"):
        call_command("certs", "export-roots", "/dev/null")


def test_export_roots_writes_through_a_symlink(tmp_path, spec):
    install(Store.ROOT, spec.toot)
    real = tmp_path / "real.pem"
    real.write_text("old")
    link = tmp_path / "link.pem"
    link.symlink_to(real)
    call_command("certs", "export-roots", str(link))
    assert link.is_symlink()
    assert load_certificates(real.read_bytes()) == [spec.toot.cert]


def test_a_non_ca_in_the_root_store_does_not_make_its_children_connect(spec):
    not_ca = make_cert(
        "Installed client", None, basic_constraints=False, key_usage={"digital_signature": True, "key_cert_sign": True}
    )
    flows.add_to_store(Store.ROOT, [not_ca.cert], ACTOR)
    assert verdicts.judge(not_ca.cert).connection.ok
    assert not verdicts.judge(make_client("Child", not_ca).cert).connection.ok


# --- one rule for a CN, wherever it is typed -----------------------------------------------------


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=300))
def test_the_add_form_and_the_use_case_accept_the_same_cns(rich, cn):
    """The form, the use case and the org CA's issuing share one CN rule: what the form accepts
    the use case stores, and what it refuses the use case refuses too."""
    form = AddCredentialForm({"kind": "cn", "value": cn})
    try:
        with transaction.atomic():
            flows.add_cn(rich, cn, ACTOR)
            stored = True
            transaction.set_rollback(True)
    except FlowError:
        stored = False
    assert form.is_valid() == stored, (cn, form.errors)
    if stored and len(form.cleaned_data["value"].encode()) <= 64:
        assert CreateCertificateForm({"cn": cn, "key_type": "ec-p256", "days": 30, "once": "x"}).is_valid()


# --- PKCS#12 files that ask for endless work -------------------------------------------------------


def _tlv(data: bytes, at: int) -> tuple[int, int, int]:
    """(tag, start of the value, end of the value) of the DER element at ``at``."""
    tag, length = data[at], data[at + 1]
    start = at + 2
    if length & 0x80:
        count = length & 0x7F
        length, start = int.from_bytes(data[start : start + count], "big"), start + count
    return tag, start, start + length


def _der(tag: int, value: bytes) -> bytes:
    n = len(value)
    size = (
        bytes([n]) if n < 0x80 else bytes([0x80 | ((n.bit_length() + 7) // 8)]) + n.to_bytes((n.bit_length() + 7) // 8)
    )
    return bytes([tag]) + size + value


def with_mac_iterations(pfx: bytes, iterations: int) -> bytes:
    """The same PKCS#12 file, its MAC asking for ``iterations`` rounds (no valid MAC needed: the
    app tries the empty passwords before it can know)."""
    _, start, end = _tlv(pfx, 0)
    parts, at = [], start
    while at < end:
        _, value_start, value_end = _tlv(pfx, at)
        parts.append(pfx[at:value_end])
        at = value_end
    mac = parts[-1]
    _, start, end = _tlv(mac, 0)
    inner, at = [], start
    while at < end:
        _, _, value_end = _tlv(mac, at)
        inner.append(mac[at:value_end])
        at = value_end
    inner[-1] = _der(0x02, iterations.to_bytes(4, "big"))
    return _der(0x30, b"".join(parts[:-1]) + _der(0x30, b"".join(inner)))


def test_a_pkcs12_file_asking_for_endless_rounds_is_refused_within_the_budget(spec, monkeypatch):
    from cryptography.hazmat.primitives.serialization import NoEncryption, pkcs12

    from certs import pfx

    monkeypatch.setattr(pfx, "CPU_SECONDS", 1)
    plain = pkcs12.serialize_key_and_certificates(b"x", None, spec.frank.cert, None, NoEncryption())
    assert load_certificates(plain)[0] == spec.frank.cert  # the unpatched file opens
    started = time.monotonic()
    with pytest.raises(CertificateLoadError, match="took more than 1 seconds of work, so it was not read"):
        load_certificates(with_mac_iterations(plain, 2**31 - 1), filename="trap.p12")
    assert time.monotonic() - started < 10


# --- what PostgreSQL refuses to store ---------------------------------------------------------------


def test_a_forwarded_certificate_with_a_nul_in_a_second_cn_is_refused_not_a_500(spec, toot_installed):
    """Its CNs went into the audit log's JSON, which PostgreSQL refuses to hold a NUL in."""
    from urllib.parse import quote

    from cryptography.x509.oid import NameOID
    from django.test import Client

    from audit.models import AuditEvent

    subject = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, "Frank"), x509.NameAttribute(NameOID.COMMON_NAME, "Fr\x00ank")]
    )
    two_names = make_cert(None, spec.chug, subject=subject)
    response = Client().get("/api/whoami", HTTP_X_SSL_CLIENT_CERT=quote(two_names.pem.decode(), safe=""))
    assert response.status_code == 200
    reasons = " ".join(AuditEvent.objects.get(action="signon.refused").detail["reasons"])
    assert "several CNs ('Frank', 'Fr\\x00ank')" in reasons


def test_a_username_that_normalises_past_its_limit_is_refused_and_never_stored(db, tmp_path):
    """150 x U+FDFA becomes 2,700 characters under NFKC: stored past the limit on SQLite, a
    database error on PostgreSQL, a traceback on the command line."""
    username = "\ufdfa" * 150
    with pytest.raises(ValidationError, match="at most 150 characters"):
        User.objects.create_user(username)
    password = tmp_path / "pw"
    password.write_text("a long enough password 1")
    with pytest.raises(CommandError) as refused:
        call_command("users", "add", username, "--password-file", str(password))
    assert refused.value.returncode == 2
    assert not User.objects.exists()
