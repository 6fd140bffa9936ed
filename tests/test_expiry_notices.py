"""Owners told in time: ``certs expiring`` (run daily by cron) mails each user whose certificate
expires at 30, 14, 7 and 1 days before, once per threshold and never after a renewal, and sends
the administrators one digest that lists the users without an email address."""

import datetime as dt
from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from certs import crls, flows, reports, tank, verdicts
from certs.models import ExpiryNotice, Store
from tests.conftest import ACTOR, install
from tests.pki import DAY, NOW, crl_der, make_client, make_crl

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_mail(alice):
    alice.email = "alice@example.com"
    alice.save()
    return alice


@pytest.fixture
def expiring(spec, rich, toot_installed):
    """rich's certificate, expiring in 29 and a half days."""
    issued = make_client(
        "Rich", spec.chug, not_before=NOW - 300 * DAY, not_after=NOW + 29 * DAY + dt.timedelta(hours=12)
    )
    flows.import_to_profile(rich, [issued.cert], ACTOR)
    return issued


def run(*args) -> str:
    out = StringIO()
    call_command("certs", "expiring", *args, stdout=out, stderr=out)
    return out.getvalue()


def at(monkeypatch, days_before_expiry: float, cert):
    moment = cert.not_valid_after_utc - dt.timedelta(days=days_before_expiry)
    monkeypatch.setattr(timezone, "now", lambda: moment)


def to(address):
    return [m for m in mail.outbox if m.to == [address]]


def test_each_threshold_is_mailed_once(monkeypatch, admin_mail, rich, expiring):
    out = run()
    assert "Told 1 user by mail: rich." in out
    (message,) = to("rich@example.com")
    assert message.subject == "[MFT] Your client certificate expires in 29 days"
    assert "signs you on to the MFT service as 'rich'" in message.body
    assert format(expiring.cert.not_valid_after_utc, "%Y-%m-%d") in message.body
    assert "Get a renewed certificate" in message.body and "holding" not in message.subject
    assert len(to("alice@example.com")) == 1  # one digest for the administrators
    run()
    assert len(to("rich@example.com")) == 1  # not twice for one threshold
    for days, threshold in ((13.5, 14), (13.2, None), (6.5, 7), (0.5, 1), (0.2, None)):
        at(monkeypatch, days, expiring.cert)
        before = len(to("rich@example.com"))
        run()
        assert len(to("rich@example.com")) == before + (1 if threshold else 0), days
    assert sorted(ExpiryNotice.objects.values_list("days", flat=True)) == [1, 7, 14, 30]
    assert to("rich@example.com")[-1].subject == "[MFT] Your client certificate expires in less than a day"


def test_a_run_missed_for_weeks_sends_only_the_threshold_reached(monkeypatch, admin_mail, rich, expiring):
    at(monkeypatch, 5, expiring.cert)
    run()
    run()
    assert list(ExpiryNotice.objects.values_list("days", flat=True)) == [7]
    assert len(to("rich@example.com")) == 1


def test_nothing_after_an_accepted_renewal(monkeypatch, spec, admin_mail, rich, expiring):
    run()
    renewal = make_client("Rich", spec.chug, not_after=NOW + 400 * DAY)
    entry = tank.record_presentation(
        verdicts.judge(renewal.cert, username="rich"), renewal.cert, "rich", "https", None
    )[0]
    tank.accept_tank_entry(entry.pk, ACTOR, replace=True)
    for days in (13, 6, 0.5):
        at(monkeypatch, days, expiring.cert)
        run()
    assert len(to("rich@example.com")) == 1


def test_nothing_once_a_renewal_is_on_the_profile_by_other_means(monkeypatch, spec, admin_mail, rich, expiring):
    run()
    flows.import_to_profile(rich, [make_client("Rich", spec.chug, not_after=NOW + 400 * DAY).cert], ACTOR)
    at(monkeypatch, 13, expiring.cert)
    run()
    assert len(to("rich@example.com")) == 1


def test_a_user_without_an_email_address_is_listed_to_the_administrators(admin_mail, rich, expiring):
    rich.email = ""
    rich.save()
    out = run()
    assert "No email address, so listed to the administrators instead: rich." in out
    (digest,) = mail.outbox
    assert digest.to == ["alice@example.com"]
    assert "have no email address" in digest.body and "- rich: Rich" in digest.body
    assert not ExpiryNotice.objects.exists()


def test_the_digest_alone_goes_when_only_users_without_email_are_to_be_told(admin_mail, rich, expiring):
    rich.email = ""
    rich.save()
    run("--days", "1")  # nothing in the administrators' window, but rich cannot be told
    (digest,) = mail.outbox
    assert "without an email address" in digest.subject


def test_inactive_users_and_expired_certificates_are_not_mailed(monkeypatch, admin_mail, rich, expiring):
    rich.is_active = False
    rich.save()
    run()
    assert not to("rich@example.com")
    rich.is_active = True
    rich.save()
    at(monkeypatch, -1, expiring.cert)
    run()
    assert not to("rich@example.com")


def test_no_mail_tells_nobody_and_records_nothing(admin_mail, rich, expiring):
    run("--no-mail")
    assert not mail.outbox and not ExpiryNotice.objects.exists()


def test_a_mail_server_that_refuses_is_tried_again_next_run(monkeypatch, admin_mail, rich, expiring):
    real = reports.send_mail

    def refusing(subject, body, sender, recipients):
        if recipients == ["rich@example.com"]:
            raise OSError("mail server down")
        return real(subject, body, sender, recipients)

    monkeypatch.setattr(reports, "send_mail", refusing)
    assert "the next run tries again" in run()
    assert not ExpiryNotice.objects.exists()
    monkeypatch.setattr(reports, "send_mail", real)
    run()
    assert len(to("rich@example.com")) == 1


def test_each_user_is_told_about_each_of_their_certificates(spec, admin_mail, rich, charlie, expiring):
    charlie.email = "charlie@example.com"
    charlie.save()
    install(Store.APPROVED, spec.chug)
    other = make_client("Charlie", spec.chug, not_after=NOW + 6 * DAY)
    flows.import_to_profile(charlie, [other.cert], ACTOR)
    assert "Told 2 users by mail: charlie, rich." in run()  # the one expiring first first
    assert len(to("charlie@example.com")) == 1 and "in 5 days" in to("charlie@example.com")[0].subject


def test_the_administrators_hear_who_was_told_even_outside_their_window(admin_mail, rich, expiring):
    run("--days", "1")
    (digest,) = to("alice@example.com")
    assert "told that their certificates expire" in digest.subject
    assert "- rich (rich@example.com): Rich" in digest.body


def test_stale_and_soon_stale_crls_are_in_the_administrators_digest(admin_mail, rich, expiring, spec):
    flows.add_to_store(Store.ROOT, [spec.toot.cert], ACTOR)
    flows.add_to_store(Store.INTERMEDIATE, [spec.chug.cert], ACTOR)
    for crl in (
        make_crl(spec.chug, this_update=NOW - 9 * DAY, next_update=NOW - DAY),
        make_crl(spec.toot, next_update=NOW + dt.timedelta(hours=2)),
    ):
        assert not crls.add_crl_file(crl_der(crl), ACTOR)[1]
    run()
    (digest,) = to("alice@example.com")
    assert "These CRLs are stale or go stale within a day" in digest.body
    assert "Chug and Ring" in digest.body and ", stale, next update" in digest.body
    assert ", soon stale, next update" in digest.body
    assert "manage.py certs crls fetch" in digest.body


def test_the_digest_goes_for_a_stale_crl_alone(admin_mail, spec):
    flows.add_to_store(Store.ROOT, [spec.toot.cert], ACTOR)
    flows.add_to_store(Store.INTERMEDIATE, [spec.chug.cert], ACTOR)
    assert not crls.add_crl_file(crl_der(make_crl(spec.chug, next_update=NOW - DAY)), ACTOR)[1]
    run()
    (digest,) = to("alice@example.com")
    assert digest.subject == "[MFT] 1 CRL(s) stale or going stale"
    assert "holding tank" not in digest.body


def test_fresh_crls_send_no_digest(admin_mail, spec):
    flows.add_to_store(Store.ROOT, [spec.toot.cert], ACTOR)
    flows.add_to_store(Store.INTERMEDIATE, [spec.chug.cert], ACTOR)
    assert not crls.add_crl_file(crl_der(make_crl(spec.chug, next_update=NOW + 5 * DAY)), ACTOR)[1]
    run()
    assert not mail.outbox
