"""Revocation by CRL: the store, the policy, the verdict, and the command line.

The specification's chain: Frank, signed by Chug and Ring, signed by the root Toot. Attacks are
tested first: a CRL signed by the wrong key, an older CRL replayed over a newer one, a stale
CRL past its grace, a CRL with a critical extension the app does not understand.
"""

import datetime as dt
import html
import json
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from django.urls import reverse
from django.utils import timezone

from audit.models import ACTION_LABELS, AuditEvent
from certs import crls, flows, verdicts
from certs.flows import FlowError
from certs.models import Crl, RevokedSerial, Store
from certs.revocation import read_crls as read_pem_crls
from certs.x509 import format_thumbprint, sha1_thumbprint
from tests.conftest import add_crl
from tests.pki import (
    DAY,
    NOW,
    crl_der,
    crl_pem,
    make_cert,
    make_client,
    make_crl,
    make_cross,
    make_impostor,
    make_intermediate,
    make_root,
    pem_bundle,
)
from tests.test_commands import refused, run

pytestmark = pytest.mark.django_db
ACTOR = "test suite"


def refusal(crl) -> str:
    outcome, refused = crls.add_crl_file(crl_der(crl), ACTOR)
    assert not outcome.changes and len(refused) == 1
    return refused[0]


def policy(**kwargs):
    crls.set_policy(ACTOR, **{"check": "crl", **kwargs})
    verdicts.clear_caches()


def connect(spec, cert=None):
    return verdicts.judge(cert or spec.frank.cert).connection


# --- the store refuses what it cannot trust -----------------------------------------------------


def test_a_crl_signed_by_the_wrong_key_is_refused(pki):
    impostor = make_impostor(pki.chug)
    message = refusal(make_crl(pki.chug, [(pki.frank.cert, None)], key=impostor.key))
    assert "signature does not verify with the key of any known CA named 'Chug and Ring'" in message
    assert not Crl.objects.exists()


def test_a_crl_from_a_ca_the_app_does_not_know_is_refused(pki):
    message = refusal(make_crl(pki.other_root))
    assert "no CA of that name is in the trusted root store" in message


def test_a_crl_with_a_critical_extension_the_app_does_not_understand_is_refused(pki):
    odd = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\x05\x00")
    message = refusal(make_crl(pki.chug, extensions=[(odd, True)]))
    assert "critical extension the app does not understand (1.3.6.1.4.1.99999.1)" in message


def test_an_older_crl_cannot_replace_a_newer_one(pki):
    add_crl(make_crl(pki.chug, [(pki.frank.cert, x509.ReasonFlags.key_compromise)], number=5))
    message = refusal(make_crl(pki.chug, [], number=4))
    assert "a newer one is stored already" in message and "could hide a revocation" in message
    assert Crl.objects.count() == 1


def test_a_newer_crl_replaces_the_older_one(pki):
    add_crl(make_crl(pki.chug, [(pki.frank.cert, None)], number=1))
    outcome = add_crl(make_crl(pki.chug, [], number=2))
    assert "replaces the older one" in outcome.messages[0]
    assert Crl.objects.count() == 1 and not RevokedSerial.objects.exists()


def test_the_same_crl_twice_is_stored_once(pki):
    crl = make_crl(pki.chug)
    add_crl(crl)
    assert "stored already" in add_crl(crl).messages[0]
    assert Crl.objects.count() == 1


def test_pem_files_may_hold_several_crls(pki):
    data = crl_pem(make_crl(pki.toot)) + crl_pem(make_crl(pki.chug))
    outcome, refused = crls.add_crl_file(data, ACTOR)
    assert not refused and len(outcome.changes) == 2


@pytest.mark.parametrize("data", [b"", b"not a crl", b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"])
def test_garbage_is_refused_in_words(pki, data):
    with pytest.raises(FlowError) as caught:
        crls.add_crl_file(data, ACTOR, filename="bad.crl")
    assert str(caught.value).startswith("bad.crl: ") and str(caught.value).endswith(".")


# --- the verdict ---------------------------------------------------------------------------------


def test_the_default_policy_checks_nothing(pki):
    connection = connect(pki)
    assert connection.ok
    assert [s.status for s in connection.revocation] == ["not_checked"] * 3


def test_a_revoked_certificate_cannot_connect_and_the_reason_says_which_when_why_and_where(pki):
    add_crl(make_crl(pki.toot))
    add_crl(make_crl(pki.chug, [(pki.frank.cert, x509.ReasonFlags.key_compromise)]))
    policy()
    connection = connect(pki)
    assert not connection.ok
    thumbprint = format_thumbprint(sha1_thumbprint(pki.frank.cert))
    assert f"'Frank' ({thumbprint}) was revoked on {(NOW - DAY):%Y-%m-%d %H:%M} UTC" in connection.reason
    assert "(reason: key compromise)" in connection.reason
    assert "the CRL issued by 'Chug and Ring' (this update" in connection.reason and "next update" in connection.reason
    assert [s.status for s in connection.revocation] == ["revoked", "good", "not_checked"]
    assert connection.failed_depth == 0


def test_a_revoked_intermediate_keeps_every_certificate_below_it_out(pki):
    add_crl(make_crl(pki.toot, [(pki.chug.cert, x509.ReasonFlags.ca_compromise)]))
    add_crl(make_crl(pki.chug))
    policy()
    connection = connect(pki)
    assert not connection.ok and "'Chug and Ring'" in connection.reason and "CA compromise" in connection.reason
    assert connection.failed_depth == 1


def test_another_certificate_of_the_same_ca_still_connects(pki):
    add_crl(make_crl(pki.toot))
    add_crl(make_crl(pki.chug, [(pki.frank.cert, None)]))
    policy()
    assert connect(pki, pki.rich.cert).ok
    assert "(reason: no reason given)" in connect(pki).reason


def test_without_a_crl_the_policy_decides(pki):
    policy()
    connection = connect(pki)
    assert not connection.ok
    assert "cannot be determined (no CRL from 'Chug and Ring' is stored)" in connection.reason
    assert "refuses certificates whose status is unknown" in connection.reason
    policy(when_unknown="allow")
    connection = connect(pki)
    assert connection.ok and [s.status for s in connection.revocation] == ["unknown", "unknown", "not_checked"]


def test_a_stale_crl_counts_during_its_grace_and_not_after(pki):
    now = dt.datetime.now(dt.UTC)
    old = now - 10 * DAY
    add_crl(make_crl(pki.toot, this_update=old, next_update=now - dt.timedelta(hours=5)))
    add_crl(make_crl(pki.chug, this_update=old, next_update=now - dt.timedelta(hours=5)))
    policy(grace_hours=4)
    connection = connect(pki)
    assert not connection.ok
    assert "is stale: its next update was due" in connection.reason and "4 hours of grace are over" in connection.reason
    policy(grace_hours=6)
    assert connect(pki).ok
    policy(grace_hours=0, when_unknown="allow")
    connection = connect(pki)
    assert connection.ok and connection.revocation[0].status == "unknown"


def test_a_delta_crl_revokes_too(pki):
    add_crl(make_crl(pki.toot))
    add_crl(make_crl(pki.chug, number=1))
    policy()
    assert connect(pki).ok
    add_crl(make_crl(pki.chug, [(pki.frank.cert, x509.ReasonFlags.superseded)], number=2, delta_of=1))
    connection = connect(pki)
    assert not connection.ok and "according to the delta CRL issued by 'Chug and Ring'" in connection.reason


def test_a_per_ca_override_applies_to_what_that_ca_issued(pki):
    add_crl(make_crl(pki.chug, [(pki.frank.cert, None)]))
    crls.set_policy(ACTOR, check="crl", ca_thumbprint=format_thumbprint(sha1_thumbprint(pki.chug.cert)))
    verdicts.clear_caches()
    connection = connect(pki)
    assert not connection.ok and "was revoked" in connection.reason
    # Toot's CRL is not needed: the org default (off) applies to what Toot issued.
    assert connection.revocation[1].status == "not_checked"


def test_adding_a_crl_takes_effect_at_once_even_for_cached_verdicts(pki, settings):
    settings.MFT_VERDICT_CACHE_SECONDS = 60
    add_crl(make_crl(pki.toot))
    add_crl(make_crl(pki.chug, number=1))
    policy()
    assert connect(pki).ok
    crls.add_crl_file(crl_der(make_crl(pki.chug, [(pki.frank.cert, None)], number=2)), ACTOR)
    assert not connect(pki).ok


def test_a_cached_verdict_lasts_no_longer_than_the_crl_is_fresh(pki, settings):
    now = dt.datetime.now(dt.UTC)  # not the suite's NOW: this test is about seconds
    add_crl(make_crl(pki.toot))
    add_crl(make_crl(pki.chug, next_update=now + dt.timedelta(seconds=30), this_update=now - DAY))
    policy()
    connection = connect(pki)
    assert connection.ok
    assert verdicts.connection_lifetime(connection, now) <= 30


def test_ocsp_policies_can_be_set(pki):
    assert "checked by OCSP" in crls.set_policy(ACTOR, check="ocsp").changes[0].message
    assert "then by OCSP" in crls.set_policy(ACTOR, check="crl+ocsp").changes[0].message


def test_a_policy_for_a_certificate_in_no_store_is_refused(pki):
    with pytest.raises(FlowError, match="a policy can be set only for one of those"):
        crls.set_policy(ACTOR, check="crl", ca_thumbprint=format_thumbprint(sha1_thumbprint(pki.other_root.cert)))


def test_setting_crl_checking_warns_of_cas_without_a_crl(pki):
    outcome = crls.set_policy(ACTOR, check="crl")
    assert any("No CRL is stored for" in w and "'Toot'" in w and "'Chug and Ring'" in w for w in outcome.warnings)


# --- audit ----------------------------------------------------------------------------------------


def test_every_change_is_audited(pki):
    add_crl(make_crl(pki.chug))
    row = Crl.objects.get()
    crls.remove_crl(row.pk, ACTOR)
    policy()
    actions = list(AuditEvent.objects.order_by("id").values_list("action", flat=True))
    assert actions[-3:] == ["crl.add", "crl.remove", "revocation.set"]
    assert all(action in ACTION_LABELS for action in actions[-3:])


# --- the command line (a contract) ---------------------------------------------------------------


def test_crls_add_list_remove(pki, tmp_path):
    good = tmp_path / "chug.crl"
    good.write_bytes(crl_der(make_crl(pki.chug, [(pki.frank.cert, None)])))
    out = run("certs", "crls", "add", str(good))
    assert "Added the CRL of 'Chug and Ring'" in out and "1 revoked serial," in out
    listing = run("certs", "crls", "list")
    assert "full  Chug and Ring number 1" in listing and "fresh" in listing
    (data,) = json.loads(run("certs", "crls", "list", "--json"))
    assert data["issuer"] == "CN=Chug and Ring" and data["kind"] == "full" and data["entries"] == 1
    assert data["freshness"] == "fresh" and data["next_update"] and data["age_hours"] >= 24
    assert "Removed the CRL of 'Chug and Ring'" in run("certs", "crls", "remove", str(data["id"]))
    assert "No CRL is stored." in run("certs", "crls", "list")
    assert "There is no CRL with id" in refused("certs", "crls", "remove", "999")


def test_crls_add_refuses_the_wrong_key_and_exits_2(pki, tmp_path):
    forged = tmp_path / "forged.crl"
    forged.write_bytes(crl_pem(make_crl(pki.chug, key=make_impostor(pki.chug).key)))
    message = refused("certs", "crls", "add", str(forged))
    assert message.startswith(f"{forged}: The CRL of 'Chug and Ring' was refused: its signature does not verify")
    garbage = tmp_path / "garbage.crl"
    garbage.write_bytes(b"hello")
    assert "neither a DER nor a PEM CRL" in refused("certs", "crls", "add", str(garbage))
    assert "missing.crl: no such file." in refused("certs", "crls", "add", str(tmp_path / "missing.crl"))


def test_crls_list_flags_stale_and_soon_stale(pki, tmp_path):
    path = tmp_path / "x.crl"
    path.write_bytes(crl_der(make_crl(pki.chug, this_update=NOW - 9 * DAY, next_update=NOW - DAY)))
    run("certs", "crls", "add", str(path))
    path.write_bytes(crl_der(make_crl(pki.toot, next_update=NOW + dt.timedelta(hours=3))))
    run("certs", "crls", "add", str(path))
    listing = run("certs", "crls", "list")
    assert ": STALE" in listing and ": SOON STALE" in listing


def test_revocation_show_and_set(pki):
    assert "Org default: off" in run("certs", "revocation", "show")
    out = run("certs", "revocation", "set", "--check", "crl", "--grace-hours", "12")
    assert "Revocation policy for the org default: checked by CRL" in out and "12 hours of grace" in out
    chug = format_thumbprint(sha1_thumbprint(pki.chug.cert))
    run("certs", "revocation", "set", "--ca", chug, "--check", "off")
    data = json.loads(run("certs", "revocation", "show", "--json"))
    assert data["default"]["check"] == "crl" and data["default"]["when_unknown"] == "refuse"
    assert data["default"]["grace_hours"] == 12
    assert data["overrides"][0]["ca"] == chug and data["overrides"][0]["check"] == "off"
    assert "checked by CRL, then by OCSP" in run("certs", "revocation", "set", "--check", "crl+ocsp")
    assert "--grace-hours must be from 0" in refused(
        "certs", "revocation", "set", "--check", "crl", "--grace-hours", "-1"
    )
    assert "hexadecimal digits" in refused("certs", "revocation", "set", "--ca", "nonsense", "--check", "crl")


def test_check_json_reports_revocation_per_certificate(pki, tmp_path):
    add_crl(make_crl(pki.toot))
    add_crl(make_crl(pki.chug, [(pki.frank.cert, x509.ReasonFlags.key_compromise)]))
    policy()
    cert = tmp_path / "frank.pem"
    cert.write_bytes(pki.frank.pem)
    data = json.loads(run("certs", "check", str(cert), "--json"))
    statuses = data["connect"]["revocation"]
    assert [s["status"] for s in statuses] == ["revoked", "good", "not_checked"]
    assert statuses[0]["thumbprint"] == format_thumbprint(sha1_thumbprint(pki.frank.cert))
    assert "Chug and Ring" in statuses[0]["source"] and statuses[0]["this_update"] and statuses[0]["next_update"]
    assert "key compromise" in statuses[0]["reason"]
    assert data["category"] == "cannot_connect"
    text = run("certs", "check", str(cert))
    assert "Revocation, from the certificate up:" in text and "revoked:" in text


def test_a_large_crl_loads_in_batches_and_is_looked_up_by_index(pki):
    revoked = [(serial, None) for serial in range(1000, 31000)]
    client = make_client("Late", pki.chug)
    revoked.append((client.cert, x509.ReasonFlags.key_compromise))
    add_crl(make_crl(pki.toot))
    add_crl(make_crl(pki.chug, revoked))
    assert RevokedSerial.objects.count() == 30001
    policy()
    assert not connect(pki, client.cert).ok
    assert connect(pki).ok


# --- every interface reaches the same decision -----------------------------------------------------


@pytest.fixture
def frank_revoked(pki, rich):
    flows.add_thumbprint(rich, sha1_thumbprint(pki.frank.cert), ACTOR)
    rich.https_mode = "cert"
    rich.save()
    add_crl(make_crl(pki.toot))
    add_crl(make_crl(pki.chug, [(pki.frank.cert, x509.ReasonFlags.key_compromise)]))
    return pki


def forwarded(issued):
    return {"HTTP_X_SSL_CLIENT_CERT": quote(issued.pem.decode(), safe=""), "HTTP_X_SSL_CLIENT_VERIFY": "SUCCESS"}


def test_forward_auth_lets_a_revoked_certificate_in_only_while_revocation_is_off(client, frank_revoked):
    assert client.get("/auth/forward", **forwarded(frank_revoked.frank)).status_code == 200
    policy()
    assert client.get("/auth/forward", **forwarded(frank_revoked.frank)).status_code == 403
    refused_event = AuditEvent.objects.filter(action="signon.refused").order_by("-id").first()
    assert refused_event is not None and "was revoked on" in json.dumps(refused_event.detail) + refused_event.summary


def test_the_doctor_marks_each_box(client, alice, frank_revoked):
    policy()
    client.force_login(alice)
    response = client.post(reverse("certs:doctor"), {"pasted": frank_revoked.frank.pem.decode()})
    page = html.unescape(response.content.decode())
    assert "REVOKED" in page and "not revoked" in page and "revocation not checked" in page
    assert "(reason: key compromise)" in page


# --- revocation applies to the path that was accepted ---------------------------------------------


@pytest.fixture
def crossed(db):
    """'Cross CA' (one key) certified by two installed roots; both of its certificates in the pool."""
    old_root, new_root = make_root("Old Root"), make_root("New Root")
    by_old = make_intermediate("Cross CA", old_root)
    by_new = make_cross(by_old, new_root)
    flows.add_to_store(Store.ROOT, [old_root.cert, new_root.cert], ACTOR)
    flows.add_to_store(Store.INTERMEDIATE, [by_old.cert, by_new.cert], ACTOR)
    verdicts.clear_caches()
    return {
        "old_root": old_root,
        "new_root": new_root,
        "by_old": by_old,
        "by_new": by_new,
        "frank": make_client("Frank", by_old),
    }


def thumbprints(certs):
    return [format_thumbprint(sha1_thumbprint(c)) for c in certs]


def check_json(tmp_path, *issued) -> dict:
    cert = tmp_path / "frank.pem"
    cert.write_bytes(pem_bundle(*issued))
    return json.loads(run("certs", "check", str(cert), "--json"))


@pytest.mark.parametrize("order", ["revoked-first", "revoked-last"])
def test_a_revoked_cross_certificate_does_not_keep_the_other_path_out(crossed, order, tmp_path):
    add_crl(make_crl(crossed["old_root"], [(crossed["by_old"].cert, x509.ReasonFlags.ca_compromise)]))
    add_crl(make_crl(crossed["new_root"]))
    add_crl(make_crl(crossed["by_old"]))  # the Cross CA's own CRL: Frank is not on it
    policy()
    chain = [crossed["by_old"], crossed["by_new"]]
    if order == "revoked-last":
        chain.reverse()
    connection = verdicts.judge(crossed["frank"].cert, [c.cert for c in chain]).connection
    assert connection.ok, connection.reason
    assert connection.path == (crossed["frank"].cert, crossed["by_new"].cert, crossed["new_root"].cert)
    assert [s.status for s in connection.revocation] == ["good", "good", "not_checked"]
    # certs check --json reports the revocation of the path that was accepted, one entry per certificate.
    data = check_json(tmp_path, crossed["frank"], *chain)
    assert data["connect"]["ok"]
    assert [s["thumbprint"] for s in data["connect"]["revocation"]] == [
        c["thumbprint"] for c in data["connect"]["chain"]
    ]
    assert data["connect"]["revocation"][1]["thumbprint"] == thumbprints([crossed["by_new"].cert])[0]


def test_a_revoked_certificate_is_refused_on_every_path(crossed, tmp_path):
    add_crl(make_crl(crossed["old_root"]))
    add_crl(make_crl(crossed["new_root"]))
    add_crl(make_crl(crossed["by_old"], [(crossed["frank"].cert, x509.ReasonFlags.key_compromise)]))
    policy()
    for chain in ([crossed["by_old"], crossed["by_new"]], [crossed["by_new"], crossed["by_old"]]):
        connection = verdicts.judge(crossed["frank"].cert, [c.cert for c in chain]).connection
        assert not connection.ok
        assert "'Frank'" in connection.reason and "key compromise" in connection.reason
        assert connection.failed_depth == 0
        data = check_json(tmp_path, crossed["frank"], *chain)
        assert data["category"] == "cannot_connect"
        statuses = data["connect"]["revocation"]
        assert [s["status"] for s in statuses] == ["revoked", "good", "not_checked"]
        assert [s["thumbprint"] for s in statuses] == [c["thumbprint"] for c in data["connect"]["chain"]]


def test_both_cross_certificates_revoked_keep_it_out(crossed):
    add_crl(make_crl(crossed["old_root"], [(crossed["by_old"].cert, x509.ReasonFlags.ca_compromise)]))
    add_crl(make_crl(crossed["new_root"], [(crossed["by_new"].cert, x509.ReasonFlags.ca_compromise)]))
    add_crl(make_crl(crossed["by_old"]))
    policy()
    connection = verdicts.judge(crossed["frank"].cert).connection
    assert not connection.ok and "CA compromise" in connection.reason and connection.failed_depth == 1


# --- export for nginx ----------------------------------------------------------------------------


def test_export_crls_writes_pem_for_nginx_and_warns_of_cas_without_one(pki, tmp_path):
    add_crl(make_crl(pki.chug, [(pki.frank.cert, None)]))
    add_crl(make_crl(pki.chug, [(pki.frank.cert, None)], number=2, delta_of=1))
    target = tmp_path / "crls.pem"
    out = run("certs", "export-crls", str(target))
    assert "Wrote 1 CRL to" in out
    assert "No CRL for 'Toot'" in out and "nginx refuses every certificate" in out
    (crl,) = read_pem_crls(target.read_bytes())
    assert crl.issuer == pki.chug.cert.subject and crl.get_revoked_certificate_by_serial_number(
        pki.frank.cert.serial_number
    )
    add_crl(make_crl(pki.toot, this_update=NOW - 9 * DAY, next_update=NOW - DAY))
    out = run("certs", "export-crls", "-")
    assert out.count("-----BEGIN X509 CRL-----") == 2 and "Stale (past their next update)" in out
    assert "is a directory" in refused("certs", "export-crls", str(tmp_path))


def test_export_crls_with_nothing_stored_says_so(pki, tmp_path):
    out = run("certs", "export-crls", str(tmp_path / "crls.pem"))
    assert "No CRL is stored" in out and "Wrote 0 CRLs" in out


# --- the trust pages ------------------------------------------------------------------------------


def test_the_trust_pages_show_each_cas_crl_freshness(client, alice, pki):
    client.force_login(alice)
    now = dt.datetime.now(dt.UTC)  # the page shows the age to a tenth of an hour
    add_crl(make_crl(pki.chug, this_update=now - 2 * DAY, next_update=now + dt.timedelta(hours=3)))
    roots = html.unescape(client.get(reverse("certs:roots")).content.decode())
    assert "no CRL" in roots
    intermediates = html.unescape(client.get(reverse("certs:intermediates")).content.decode())
    assert "soon stale" in intermediates and "48.0 hours old" in intermediates
    add_crl(make_crl(pki.toot, this_update=NOW - 9 * DAY, next_update=NOW - DAY))
    assert ">stale<" in client.get(reverse("certs:roots")).content.decode()
    flows.add_to_store(Store.APPROVED, [pki.chug.cert], ACTOR)
    assert "soon stale" in client.get(reverse("certs:cas")).content.decode()


def test_a_separate_crl_signing_certificate_counts_only_when_a_known_ca_issued_it(pki):
    usage = {"crl_sign": True, "digital_signature": False}
    signer = make_cert(None, pki.toot, subject=pki.chug.cert.subject, key_usage=usage, eku=[])
    crl = make_crl(pki.chug, [(pki.frank.cert, x509.ReasonFlags.key_compromise)], key=signer.key)
    outcome, refused = crls.add_crl_files([("chug.crl", crl_der(crl)), ("signer.pem", signer.pem)], ACTOR)
    assert not refused and Crl.objects.get().signer.sha1 == sha1_thumbprint(signer.cert)
    add_crl(make_crl(pki.toot))
    policy()
    assert "was revoked on" in connect(pki).reason

    rogue_ca = make_cert("Rogue", None, ca=True)
    rogue = make_cert(None, rogue_ca, subject=pki.chug.cert.subject, key_usage=usage, eku=[])
    forged = make_crl(pki.chug, [], key=rogue.key, number=9)
    _, refused = crls.add_crl_files([("forged.crl", crl_der(forged)), ("rogue.pem", rogue.pem)], ACTOR)
    assert "which no CA in the trusted root store, the intermediate pool or the approved CA list issued" in refused[0]


def test_a_crl_entry_with_a_critical_extension_the_app_does_not_understand_refuses_the_crl(pki):
    odd = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.99999.2"), b"\x05\x00")
    entry = (
        x509.RevokedCertificateBuilder()
        .serial_number(pki.frank.cert.serial_number)
        .revocation_date(NOW - DAY)
        .add_extension(odd, critical=True)
        .build()
    )
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(pki.chug.cert.subject)
        .last_update(NOW - DAY)
        .next_update(NOW + DAY)
        .add_revoked_certificate(entry)
    )
    message = refusal(builder.sign(pki.chug.key, hashes.SHA256()))
    assert "has a critical extension the app does not understand (1.3.6.1.4.1.99999.2)" in message
    assert not Crl.objects.exists() and not RevokedSerial.objects.exists()


def test_the_dashboard_lists_stale_and_soon_stale_crls(client, alice, pki):
    client.force_login(alice)
    assert "crls-attention" not in client.get("/").content.decode()
    add_crl(make_crl(pki.chug, this_update=NOW - 9 * DAY, next_update=NOW - DAY))
    add_crl(make_crl(pki.toot, next_update=NOW + dt.timedelta(hours=2)))
    page = client.get("/").content.decode()
    assert 'id="crls-attention"' in page and ">stale<" in page and ">soon stale<" in page


@pytest.mark.parametrize("chain_order", ["checked-copy-first", "unchecked-copy-first"])
def test_a_cas_override_follows_the_ca_on_every_path(crossed, chain_order):
    """An override set on one certificate of a CA applies to its cross-signed copy too, so the
    chain a client sends cannot choose a path on which revocation goes unchecked."""
    add_crl(make_crl(crossed["by_old"], [(crossed["frank"].cert, x509.ReasonFlags.key_compromise)]))
    # The org default stays off; only the Cross CA's certificate under Old Root is set to CRL.
    crls.set_policy(ACTOR, check="crl", ca_thumbprint=format_thumbprint(sha1_thumbprint(crossed["by_old"].cert)))
    verdicts.clear_caches()
    chain = [crossed["by_old"], crossed["by_new"]]
    if chain_order == "unchecked-copy-first":
        chain.reverse()
    for offered in (chain, chain[1:], chain[:1]):
        connection = verdicts.judge(crossed["frank"].cert, [c.cert for c in offered]).connection
        assert not connection.ok, [c.cert.issuer for c in offered]
        assert "key compromise" in connection.reason


def test_disagreeing_overrides_on_one_ca_take_the_strictest(crossed):
    add_crl(make_crl(crossed["by_old"], [(crossed["frank"].cert, x509.ReasonFlags.key_compromise)]))
    crls.set_policy(ACTOR, check="crl", ca_thumbprint=format_thumbprint(sha1_thumbprint(crossed["by_old"].cert)))
    crls.set_policy(ACTOR, check="off", ca_thumbprint=format_thumbprint(sha1_thumbprint(crossed["by_new"].cert)))
    verdicts.clear_caches()
    for chain in ([crossed["by_new"]], [crossed["by_old"]]):
        assert not verdicts.judge(crossed["frank"].cert, [c.cert for c in chain]).connection.ok


def test_a_load_that_fails_after_some_batches_leaves_nothing_and_the_old_crl_counts(pki, monkeypatch):
    """Entries are written batch by batch, each batch committed: a CRL whose last entry is refused
    after several batches were written leaves no row and no entry behind, and the CRL it would
    have replaced still counts."""
    add_crl(make_crl(pki.chug, [(pki.frank.cert, x509.ReasonFlags.key_compromise)], number=1))
    old = Crl.objects.get(issuer=pki.chug.cert.subject.rfc4514_string())
    monkeypatch.setattr(crls, "SQLITE_WRITE_ROWS", 7)
    odd = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.99999.3"), b"\x05\x00")
    entries = [
        x509.RevokedCertificateBuilder().serial_number(1000 + i).revocation_date(NOW - DAY).build() for i in range(50)
    ]
    entries.append(
        x509.RevokedCertificateBuilder()
        .serial_number(5000)
        .revocation_date(NOW - DAY)
        .add_extension(odd, critical=True)
        .build()
    )
    builder = x509.CertificateRevocationListBuilder(
        pki.chug.cert.subject,
        NOW - DAY,
        NOW + DAY,
        [x509.Extension(x509.CRLNumber.oid, False, x509.CRLNumber(2))],
        entries,
    )
    message = refusal(builder.sign(pki.chug.key, hashes.SHA256()))
    assert "has a critical extension the app does not understand (1.3.6.1.4.1.99999.3)" in message
    assert list(Crl.every.values_list("id", flat=True)) == list(Crl.objects.values_list("id", flat=True))
    assert set(RevokedSerial.objects.values_list("crl_id", flat=True)) == {old.pk}
    verdicts.clear_caches()
    crls.set_policy(ACTOR, check="crl", when_unknown="refuse")
    connection_ = verdicts.judge(pki.frank.cert).connection
    assert not connection_.ok and "was revoked on" in connection_.reason


def test_a_crl_being_loaded_or_retired_counts_for_nothing(pki):
    """A row that is not complete (a load under way, or a CRL replaced or removed whose entries
    are still being deleted) is left out of what sign-on reads, of the lists and of the export."""
    add_crl(make_crl(pki.chug, [(pki.frank.cert, x509.ReasonFlags.key_compromise)], number=1))
    crls.set_policy(ACTOR, check="crl", when_unknown="allow")
    verdicts.clear_caches()
    assert not verdicts.judge(pki.frank.cert).connection.ok
    Crl.every.filter(issuer=pki.chug.cert.subject.rfc4514_string()).update(complete=False)
    verdicts.clear_caches()
    connection_ = verdicts.judge(pki.frank.cert).connection
    assert connection_.ok and connection_.revocation[0].status == "unknown"
    assert all(row.complete for row in crls.stored_crls())
    assert pki.chug.cert.subject.rfc4514_string() not in {row.issuer for row in crls.stored_crls()}


def test_the_same_crl_being_loaded_elsewhere_is_said_and_an_abandoned_load_is_cleared(pki):
    """A CRL whose load is under way in another process (its row reserved, not yet counting) is
    refused in words, not added twice; one left by a load that stopped hours ago is cleared
    before the next load, entries and all."""
    crl = make_crl(pki.chug, [(pki.frank.cert, x509.ReasonFlags.key_compromise)], number=4)
    add_crl(crl)
    row = Crl.objects.get(number="4")
    Crl.every.filter(pk=row.pk).update(complete=False)
    message = refusal(crl)
    assert message.endswith("is being added right now, by another request or process.")
    assert RevokedSerial.objects.filter(crl_id=row.pk).exists()
    Crl.every.filter(pk=row.pk).update(added_at=timezone.now() - crls.ABANDONED_AFTER - dt.timedelta(minutes=1))
    add_crl(crl)
    assert not Crl.every.filter(pk=row.pk).exists() and not RevokedSerial.objects.filter(crl_id=row.pk).exists()
    assert Crl.objects.get(number="4").entry_count == 1
