"""The holding tank: certificates presented at sign-on that nobody has accepted yet."""

import pytest

from audit.models import AuditEvent
from certs import crls, flows, tank, verdicts
from certs.flows import FlowError
from certs.models import Credential, Crl, Store, TankEntry, TankKind
from certs.x509 import format_thumbprint, sha1_thumbprint
from tests.conftest import ACTOR, install
from tests.pki import crl_der, make_client, make_crl

pytestmark = pytest.mark.django_db


def present(issued, username=None, source="192.0.2.10", interface="https"):
    verdict = verdicts.judge(issued.cert, username=username)
    return tank.record_presentation(verdict, issued.cert, username, interface, source)


def test_a_known_user_gets_a_cn_entry_and_a_thumbprint_entry(spec, rich, toot_installed):
    entries = present(spec.frank, "rich")
    assert sorted((e.user.username, e.kind, e.shown_value) for e in entries) == [
        ("rich", "cn", "Frank"),
        ("rich", "thumbprint", format_thumbprint(sha1_thumbprint(spec.frank.cert))),
    ]
    assert {e.source_address for e in entries} == {"192.0.2.10"}
    assert all(e.attempts == 1 for e in entries)


def test_a_repeat_attempt_updates_the_entries_instead_of_adding(spec, rich, toot_installed):
    first = present(spec.frank, "rich")
    again = present(spec.frank, "RICH", source="198.51.100.7", interface="ftps")
    assert TankEntry.objects.count() == 2
    assert {e.pk for e in again} == {e.pk for e in first}
    for entry in TankEntry.objects.all():
        assert entry.attempts == 2
        assert entry.source_address == "198.51.100.7"
        assert entry.interface == "ftps"
        assert entry.last_seen >= entry.first_seen


def test_a_certificate_naming_no_user_lands_in_the_org_tank(spec, toot_installed):
    (entry,) = present(spec.frank)
    assert entry.user is None
    assert entry.kind == TankKind.CERTIFICATE
    present(spec.frank)
    assert TankEntry.objects.get().attempts == 2


def test_an_unknown_username_lands_in_the_org_tank(spec, toot_installed):
    (entry,) = present(spec.frank, "nobody")
    assert entry.user is None


def test_a_certificate_that_cannot_connect_never_reaches_the_tank(spec, rich):
    install(Store.ROOT, spec.other_root)
    assert present(spec.frank, "rich") == []
    assert not TankEntry.objects.exists()


def test_a_certificate_that_authenticates_never_reaches_the_tank(spec, rich, toot_installed):
    flows.add_thumbprint(rich, sha1_thumbprint(spec.frank.cert), ACTOR)
    assert present(spec.frank, "rich") == []


def test_an_inactive_users_accepted_certificate_is_not_tanked(spec, rich, toot_installed):
    flows.add_thumbprint(rich, sha1_thumbprint(spec.frank.cert), ACTOR)
    rich.is_active = False
    rich.save()
    assert present(spec.frank, "rich") == []


def test_a_certificate_without_a_cn_gets_only_a_thumbprint_entry(spec, rich, toot_installed):
    no_cn = make_client(None, spec.chug, org="Example")
    (entry,) = present(no_cn, "rich")
    assert entry.kind == TankKind.THUMBPRINT


def test_accepting_the_thumbprint_entry_lets_the_certificate_authenticate(spec, rich, toot_installed):
    entries = {e.kind: e for e in present(spec.frank, "rich")}
    message = tank.accept_tank_entry(entries["thumbprint"].pk, ACTOR)
    assert message == f"Accepted thumbprint {format_thumbprint(sha1_thumbprint(spec.frank.cert))} into rich's profile."
    assert verdicts.judge(spec.frank.cert).authentication.user == "rich"
    # The CN entry stays for the admin to decide.
    assert list(TankEntry.objects.values_list("kind", flat=True)) == ["cn"]
    credential = Credential.objects.get(user=rich)
    assert credential.source == "holding tank"
    assert credential.certificate.sha1 == sha1_thumbprint(spec.frank.cert)


def test_accepting_the_cn_entry_needs_an_approved_ca_to_authenticate(spec, rich, toot_installed):
    entries = {e.kind: e for e in present(spec.frank, "rich")}
    tank.accept_tank_entry(entries["cn"].pk, ACTOR)
    assert Credential.objects.get(user=rich).value == "Frank"
    assert not verdicts.judge(spec.frank.cert).authentication.ok
    install(Store.APPROVED, spec.chug)
    assert verdicts.judge(spec.frank.cert).authentication.ok


def test_an_org_entry_is_assigned_to_a_user_by_thumbprint_or_cn(spec, rich, charlie, toot_installed):
    (entry,) = present(spec.frank)
    with pytest.raises(FlowError, match="choose the user"):
        tank.accept_tank_entry(entry.pk, ACTOR)
    tank.accept_tank_entry(entry.pk, ACTOR, user=charlie, as_kind="cn")
    assert Credential.objects.get(user=charlie).value == "Frank"
    assert not TankEntry.objects.exists()
    (entry,) = present(make_client("Zed", spec.chug))
    tank.accept_tank_entry(entry.pk, ACTOR, user=rich)
    assert Credential.objects.get(user=rich).kind == "thumbprint"


def test_a_users_entry_cannot_be_accepted_for_someone_else(spec, rich, charlie, toot_installed):
    entry = present(spec.frank, "rich")[0]
    with pytest.raises(FlowError, match="can only be accepted for rich"):
        tank.accept_tank_entry(entry.pk, ACTOR, user=charlie)


def test_adding_a_credential_by_hand_clears_the_matching_entry(spec, rich, toot_installed):
    present(spec.frank, "rich")
    flows.add_cn(rich, "frank", ACTOR)
    assert list(TankEntry.objects.values_list("kind", flat=True)) == ["thumbprint"]


def test_removing_an_entry_removes_only_that_entry_and_is_audited(spec, rich, toot_installed):
    entries = present(spec.frank, "rich")
    message = tank.remove_tank_entry(entries[0].pk, ACTOR)
    assert message.startswith("Removed ") and "from rich's holding tank" in message
    assert TankEntry.objects.count() == 1
    assert AuditEvent.objects.filter(action="tank.remove", target_user=rich).exists()


def test_unknown_entries_are_refused_in_words(db):
    with pytest.raises(FlowError, match="no holding-tank entry with id 999"):
        tank.accept_tank_entry(999, ACTOR)
    with pytest.raises(FlowError, match="no holding-tank entry with id 999"):
        tank.remove_tank_entry(999, ACTOR)


def test_an_entry_says_what_the_revocation_check_found(spec, rich, toot_installed):
    assert all(e.revocation == "" for e in present(spec.frank, "rich"))  # checking is off by default

    crls.add_crl_file(crl_der(make_crl(spec.chug)), ACTOR)
    crls.add_crl_file(crl_der(make_crl(spec.toot)), ACTOR)
    crls.set_policy(ACTOR, check="crl")
    verdicts.clear_caches()
    entries = present(spec.frank, "rich")
    (found,) = {e.revocation for e in entries}  # the same on the thumbprint and the CN entry
    assert found.startswith("Not revoked: checked for 2 certificates on the path (the CRL issued by 'Chug and Ring'")
    assert "the CRL issued by 'Toot'" in found

    # No CRL for Chug and Ring any more, and unknown is let through: the entry says so.
    Crl.objects.filter(issuer_display__contains="Chug").delete()
    crls.set_policy(ACTOR, check="crl", when_unknown="allow")
    verdicts.clear_caches()
    (thumbprint, *_) = sorted(present(spec.frank, "rich"), key=lambda e: e.kind != "thumbprint")
    assert thumbprint.revocation.startswith("Revocation status unknown, let through by the policy: ")
    assert thumbprint.as_dict()["revocation"] == thumbprint.revocation
