"""Renewals in the holding tank: a presented certificate that looks like the renewal of one on a
profile says so, is accepted in one step that schedules the old one's removal, and the old one
stops signing on at its time even if no cron job ran."""

import datetime as dt
import json

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from certs import flows, tank, verdicts
from certs.flows import FlowError
from certs.models import Credential, Store, TankEntry, TrustSettings
from certs.x509 import format_thumbprint, sha1_thumbprint
from signon import flows as signon_flows
from signon.proxy import Presented
from tests.conftest import ACTOR, install
from tests.pki import DAY, NOW, make_cert, make_client, make_intermediate, make_root
from tests.test_commands import refused, run
from users.models import SignOnMode

pytestmark = pytest.mark.django_db


@pytest.fixture
def old(spec):
    """rich's certificate this year: expires in 9 days."""
    return make_client("Rich", spec.chug, not_before=NOW - 356 * DAY, not_after=NOW + 9 * DAY + dt.timedelta(hours=1))


@pytest.fixture
def new(spec):
    """Its renewal: the same subject from the same CA, a new key, a year more."""
    return make_client("Rich", spec.chug, not_before=NOW - DAY, not_after=NOW + 365 * DAY)


@pytest.fixture
def on_profile(rich, old, toot_installed):
    flows.import_to_profile(rich, [old.cert], ACTOR)
    return Credential.objects.get(user=rich, key=sha1_thumbprint(old.cert))


def present(issued, username="rich", interface="https"):
    verdict = verdicts.judge(issued.cert, username=username)
    return tank.record_presentation(verdict, issued.cert, username, interface, "192.0.2.7")


def authenticates(issued, username="rich") -> bool:
    return verdicts.judge(issued.cert, username=username).authentication.ok


def thumb(issued) -> str:
    return format_thumbprint(sha1_thumbprint(issued.cert))


# --- lineage -------------------------------------------------------------------------------------


def test_a_renewal_lands_saying_what_it_renews(on_profile, old, new):
    entries = present(new)
    assert len(entries) == 2
    assert {e.renewal_of_id for e in entries} == {on_profile.pk}
    phrase = entries[0].renewal_phrase
    assert phrase == f"renewal of {thumb(old)} (expires in 9 days), on rich's profile by thumbprint"


def test_a_renewal_with_the_same_key_and_another_name_is_found(spec, rich, on_profile, old):
    rekeyed = make_client("Richard", spec.chug, key=old.key, not_after=NOW + 400 * DAY)
    (entry, _) = present(rekeyed)
    assert entry.renewal_of_id == on_profile.pk


def test_a_renewal_naming_no_user_lands_in_the_org_tank_as_a_renewal(on_profile, new):
    (entry,) = present(new, username=None)
    assert entry.user is None
    assert entry.renewal_of_id == on_profile.pk
    assert entry.as_dict()["renewal_of"]["username"] == "rich"


def test_a_copied_subject_from_another_ca_is_no_renewal(spec, on_profile):
    other_ca = make_intermediate("Other CA", spec.toot)
    install(Store.INTERMEDIATE, other_ca)
    copy = make_client("Rich", other_ca, not_after=NOW + 400 * DAY)
    assert all(e.renewal_of_id is None for e in present(copy))


def test_an_older_certificate_is_no_renewal(spec, on_profile):
    older = make_client("Rich", spec.chug, not_before=NOW - 400 * DAY, not_after=NOW + 5 * DAY)
    assert all(e.renewal_of_id is None for e in present(older))


def test_another_users_certificate_is_no_renewal_in_this_users_tank(spec, charlie, on_profile, new):
    assert all(e.renewal_of_id is None for e in present(new, username="charlie"))


def test_renewals_come_first_on_the_users_page_and_the_pending_list(client, alice, spec, on_profile, new):
    present(make_client("Someone Else", spec.chug))
    present(new)
    present(make_client("Latest", spec.chug))
    assert [p.certificate.common_name for p in tank.pending()][0] == "Rich"
    client.force_login(alice)
    for url in (reverse("certs:edit-client-certs", args=["rich"]), reverse("certs:pending")):
        body = client.get(url).content.decode()
        assert body.index("Renewal</span>") < body.index(">Latest") < body.index("Someone Else")
        assert "on rich&#x27;s profile by thumbprint" in body


def test_the_command_line_lists_renewal_of(on_profile, old, new, spec):
    present(new)
    present(make_client("Someone Else", spec.chug))
    listed = json.loads(run("certs", "tank", "list", "--json"))
    renewals = [e["renewal_of"] for e in listed if e["renewal_of"]]
    assert len(renewals) == 2 and listed[0]["renewal_of"] is not None
    assert renewals[0] == {
        "thumbprint": thumb(old),
        "username": "rich",
        "kind": "thumbprint",
        "not_after": old.cert.not_valid_after_utc.isoformat(),
    }
    assert [e["renewal_of"] for e in listed if e["value"] == "Someone Else"] == [None]
    assert "renewal of" in run("certs", "tank", "list")


# --- accepting -----------------------------------------------------------------------------------


def test_accept_replace_keeps_the_old_one_until_its_expiry(on_profile, old, new):
    entry = present(new)[0]
    out = run("certs", "tank", "accept", str(entry.pk), "--replace")
    assert "as the renewal of" in out and "at its expiry" in out
    assert not TankEntry.objects.exists()
    on_profile.refresh_from_db()
    assert on_profile.remove_at == old.cert.not_valid_after_utc
    assert on_profile.replaced_by.key == sha1_thumbprint(new.cert)
    assert authenticates(new) and authenticates(old)
    event = AuditEvent.objects.get(action="tank.renewal")
    assert event.detail["old"] == thumb(old) and event.detail["new"] == thumb(new)


def test_the_old_one_stops_at_the_chosen_time_without_cron_then_the_expiry_run_removes_it(
    monkeypatch, on_profile, old, new
):
    entry = present(new, interface="ftps")[0]
    run("certs", "tank", "accept", str(entry.pk), "--replace", "--keep-old-days", "2")
    on_profile.refresh_from_db()
    assert abs((on_profile.remove_at - timezone.now()) - 2 * dt.timedelta(days=1)) < dt.timedelta(minutes=1)
    assert authenticates(old)
    later = timezone.now() + dt.timedelta(days=2, minutes=1)
    monkeypatch.setattr(timezone, "now", lambda: later)
    verdicts.clear_caches()
    assert not authenticates(old)  # still a valid certificate, no longer on the profile in force
    assert authenticates(new)
    assert Credential.objects.filter(pk=on_profile.pk).exists()
    out = run("certs", "expiring", "--no-mail")
    assert "replaced by a renewal" in out
    assert not Credential.objects.filter(pk=on_profile.pk).exists()


def test_sign_on_over_https_and_ftps_after_the_old_ones_time(monkeypatch, rich, on_profile, old, new):
    rich.https_mode = rich.ftps_mode = SignOnMode.CERT
    rich.save()
    entry = present(new)[0]
    tank.accept_tank_entry(entry.pk, ACTOR, replace=True, keep_old_days=1)
    for interface in ("https", "ftps"):
        assert signon_flows.decide(Presented(old.cert), interface=interface).user == rich
    later = timezone.now() + dt.timedelta(days=1, minutes=1)
    monkeypatch.setattr(timezone, "now", lambda: later)
    verdicts.clear_caches()
    for interface in ("https", "ftps"):
        assert not signon_flows.decide(Presented(old.cert), interface=interface).ok
        assert signon_flows.decide(Presented(new.cert), interface=interface).user == rich


def test_accept_replace_at_once_removes_the_old_one(on_profile, old, new):
    entry = present(new)[0]
    out = run("certs", "tank", "accept", str(entry.pk), "--replace", "--keep-old-days", "0")
    assert "removed at once" in out
    assert not Credential.objects.filter(pk=on_profile.pk).exists()
    assert not authenticates(old) and authenticates(new)


def test_replace_is_refused_in_words_when_it_renews_nothing(spec, rich, toot_installed):
    entry = present(make_client("Nobody's", spec.chug))[0]
    assert "not the renewal of a certificate on a profile" in refused(
        "certs", "tank", "accept", str(entry.pk), "--replace"
    )
    assert "--keep-old-days goes with --replace" in refused(
        "certs", "tank", "accept", str(entry.pk), "--keep-old-days", "3"
    )


def test_keep_old_days_out_of_range_is_refused(on_profile, new):
    entry = present(new)[0]
    assert "0 to 3650 days" in refused("certs", "tank", "accept", str(entry.pk), "--replace", "--keep-old-days", "-1")
    assert TankEntry.objects.filter(pk=entry.pk).exists()


def test_an_org_entry_cannot_replace_another_users_certificate(charlie, on_profile, new):
    (entry,) = present(new, username=None)
    with pytest.raises(FlowError, match="renews a certificate on rich's profile"):
        tank.accept_tank_entry(entry.pk, ACTOR, user=charlie, replace=True)
    tank.accept_tank_entry(entry.pk, ACTOR, replace=True)
    assert authenticates(new)


def test_adding_the_old_thumbprint_again_keeps_it(on_profile, old, new):
    entry = present(new)[0]
    tank.accept_tank_entry(entry.pk, ACTOR, replace=True)
    _, added = flows.add_thumbprint(on_profile.user, sha1_thumbprint(old.cert), ACTOR)
    on_profile.refresh_from_db()
    assert added and on_profile.remove_at is None


def test_the_page_accepts_a_renewal_with_the_chosen_removal(client, alice, on_profile, new):
    client.force_login(alice)
    entry = present(new)[0]
    url = reverse("certs:accept-tank-entry", args=["rich", entry.pk])
    response = client.post(url, {"replace": "yes", "keep_old": "days", "keep_old_days": "many"}, follow=True)
    assert response.status_code == 200
    assert "Give the number of days" in response.content.decode()
    assert TankEntry.objects.filter(pk=entry.pk).exists()
    response = client.post(url, {"replace": "yes", "keep_old": "sometime"}, follow=True)
    assert "Choose when the old certificate is removed" in response.content.decode()
    response = client.post(url, {"replace": "yes", "keep_old": "days", "keep_old_days": "5"}, follow=True)
    assert "as the renewal of" in response.content.decode()
    on_profile.refresh_from_db()
    assert on_profile.remove_at > timezone.now() + dt.timedelta(days=4)
    assert "Replaced by a renewal" in client.get(reverse("certs:edit-client-certs", args=["rich"])).content.decode()


def test_the_org_tank_page_accepts_a_renewal(client, alice, on_profile, new):
    client.force_login(alice)
    (entry,) = present(new, username=None)
    body = client.get(reverse("certs:org-tank")).content.decode()
    assert "on rich&#x27;s profile by thumbprint" in body
    response = client.post(
        reverse("certs:assign-tank-entry", args=[entry.pk]),
        {f"e{entry.pk}-username": "rich", f"e{entry.pk}-as_kind": "thumbprint", "replace": "yes", "keep_old": "now"},
        follow=True,
    )
    assert "removed at once" in response.content.decode()
    assert not Credential.objects.filter(pk=on_profile.pk).exists()


# --- automatic acceptance ------------------------------------------------------------------------


@pytest.fixture
def admins_with_mail(alice):
    alice.email = "alice@example.com"
    alice.save()


def test_renewals_are_not_accepted_automatically_by_default(spec, admins_with_mail, on_profile, new):
    install(Store.APPROVED, spec.chug)
    assert TrustSettings.get().auto_accept_renewals is False
    assert len(present(new)) == 2
    assert not authenticates(new)
    assert not mail.outbox


def test_with_the_setting_on_a_renewal_from_an_approved_ca_is_accepted_audited_and_mailed(
    spec, admins_with_mail, on_profile, old, new
):
    install(Store.APPROVED, spec.chug)
    assert "Turned Accept renewals automatically on" in run("certs", "auto-renew", "on")
    assert present(new) == []
    assert authenticates(new) and authenticates(old)
    assert not TankEntry.objects.exists()
    event = AuditEvent.objects.get(action="tank.renewal")
    assert event.detail["automatic"] is True and event.actor_name == tank.AUTOMATIC
    (message,) = mail.outbox
    assert message.to == ["alice@example.com"] and "Accepted automatically" in message.body
    on_profile.refresh_from_db()
    assert on_profile.remove_at == old.cert.not_valid_after_utc


def test_with_the_setting_on_an_unapproved_issuer_still_waits(spec, admins_with_mail, on_profile, new):
    flows.set_auto_accept_renewals(True, ACTOR)
    assert len(present(new)) == 2
    assert not authenticates(new)
    assert not mail.outbox


def test_with_the_setting_on_an_expired_old_certificate_still_waits(spec, rich, admins_with_mail, toot_installed):
    install(Store.APPROVED, spec.chug)
    flows.set_auto_accept_renewals(True, ACTOR)
    expired = make_client("Rich", spec.chug, not_before=NOW - 400 * DAY, not_after=NOW - DAY)
    flows.import_to_profile(rich, [expired.cert], ACTOR)
    renewal = make_client("Rich", spec.chug)
    entries = present(renewal)
    assert entries and entries[0].renewal_of is not None
    assert not authenticates(renewal)


def test_with_the_setting_on_an_already_replaced_certificate_does_not_ride_again(
    spec, admins_with_mail, on_profile, new
):
    install(Store.APPROVED, spec.chug)
    tank.accept_tank_entry(present(new)[0].pk, ACTOR, replace=True)
    flows.set_auto_accept_renewals(True, ACTOR)
    # A second "renewal" of the replaced one (another key, the same name, not newer than its
    # renewal) waits for an administrator.
    again = make_client("Rich", spec.chug, not_after=NOW + 200 * DAY)
    entries = present(again)
    assert entries and entries[0].renewal_of_id == on_profile.pk
    assert not authenticates(again)


def test_the_setting_is_turned_on_and_off_on_the_trusted_cas_page_and_audited(client, alice, rich):
    client.force_login(alice)
    assert "Accept renewals automatically" in client.get(reverse("certs:cas")).content.decode()
    response = client.post(reverse("certs:auto-renew"), {"on": "yes"}, follow=True)
    assert "Turned Accept renewals automatically on" in response.content.decode()
    assert TrustSettings.get().auto_accept_renewals
    client.post(reverse("certs:auto-renew"), {"on": "nonsense"})
    assert not TrustSettings.get().auto_accept_renewals
    assert AuditEvent.objects.filter(action="auto_renew.set").count() == 2
    client.force_login(rich)
    assert client.post(reverse("certs:auto-renew"), {"on": "yes"}).status_code in (302, 403)
    assert not TrustSettings.get().auto_accept_renewals


def test_a_mail_server_that_fails_does_not_fail_the_sign_on(monkeypatch, spec, admins_with_mail, on_profile, new):
    install(Store.APPROVED, spec.chug)
    flows.set_auto_accept_renewals(True, ACTOR)

    def broken(*args, **kwargs):
        raise OSError("connection refused")

    monkeypatch.setattr(tank, "send_mail", broken)
    assert present(new) == []
    assert authenticates(new)


def test_a_ca_that_copies_the_issuers_name_does_not_make_a_renewal(spec, on_profile):
    # Another root the org trusts signs a CA named exactly like Chug and Ring; a certificate
    # from it with rich's subject connects, but is not the renewal of rich's certificate.
    elsewhere = make_root("Partner Root")
    install(Store.ROOT, elsewhere)
    fake_chug = make_cert(None, elsewhere, ca=True, subject=spec.chug.cert.subject)
    install(Store.INTERMEDIATE, fake_chug)
    copy = make_client("Rich", fake_chug, not_after=NOW + 400 * DAY)
    assert copy.cert.issuer == on_profile.certificate.to_x509().issuer
    assert verdicts.judge(copy.cert, username="rich").connection.ok
    entries = present(copy)
    assert entries and all(e.renewal_of_id is None for e in entries)
