"""Per-record rules: uniqueness, normalisation, and the cached trust configuration."""

import datetime as dt

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.models import AuditEvent
from certs import flows, trust, verdicts
from certs.models import Certificate, Credential, Store, StoreEntry, TrustSettings
from certs.x509 import sha1_thumbprint
from tests.conftest import ACTOR, install
from tests.pki import NOW, make_client
from users.models import User

pytestmark = pytest.mark.django_db


def test_usernames_are_unique_without_regard_to_case_even_below_the_form(rich):
    with pytest.raises(IntegrityError), transaction.atomic():
        User(username="RICH").save()
    assert User.objects.find(" Rich ") == rich
    assert User.objects.get_by_natural_key("RICH") == rich


def test_the_admin_flag_is_what_django_asks_about(alice, rich):
    assert alice.is_staff and alice.has_perm("anything")
    assert not rich.is_staff and not rich.has_perm("anything")


def test_a_cn_on_a_profile_is_stored_once_however_it_is_written(rich):
    first, added = flows.add_cn(rich, "Dick", ACTOR)
    again, added_again = flows.add_cn(rich, "  DICK ", ACTOR)
    assert added and not added_again
    assert first == again
    assert Credential.objects.get().key == "dick"


def test_the_same_thumbprint_may_be_on_two_profiles(rich, charlie, spec):
    thumbprint = sha1_thumbprint(spec.frank.cert)
    flows.add_thumbprint(rich, thumbprint, ACTOR)
    flows.add_thumbprint(charlie, thumbprint, ACTOR)
    assert Credential.objects.filter(key=thumbprint).count() == 2


def test_a_certificate_is_stored_once(spec):
    first = Certificate.objects.store(spec.frank.cert)
    assert Certificate.objects.store(spec.frank.cert) == first
    assert first.to_x509() == spec.frank.cert
    assert first.common_name == "Frank" and first.issuer_display == "Chug and Ring"


def test_a_certificate_on_a_profile_links_to_what_is_known_of_it(rich, spec):
    Certificate.objects.store(spec.frank.cert)
    credential, _ = flows.add_thumbprint(rich, sha1_thumbprint(spec.frank.cert), ACTOR)
    assert credential.certificate.subject == "CN=Frank"


def test_changes_are_audited_with_who_and_what(rich, alice, spec):
    flows.add_cn(rich, "Dick", alice, source_address="192.0.2.5")
    event = AuditEvent.objects.get(action="credential.add")
    assert (event.actor, event.actor_name, event.target_user, event.source_address) == (
        alice,
        "alice",
        rich,
        "192.0.2.5",
    )
    assert event.summary == "Added CN Dick to rich's profile."


# --- the cached configuration and verdicts ------------------------------------------------------


@pytest.fixture
def count_validations(monkeypatch):
    calls = []
    real = trust.connect

    def counting(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(trust, "connect", counting)
    return calls


def test_a_repeat_verdict_is_served_from_the_cache(spec, toot_installed, count_validations):
    assert verdicts.judge(spec.frank.cert).connection.ok
    assert verdicts.judge(spec.frank.cert).connection.ok
    assert len(count_validations) == 1


def test_a_removed_root_is_never_honoured_from_the_cache(spec, toot_installed, count_validations):
    assert verdicts.judge(spec.frank.cert).connection.ok
    flows.remove_from_store(Store.ROOT, sha1_thumbprint(spec.toot.cert), ACTOR)
    assert not verdicts.judge(spec.frank.cert).connection.ok


def test_a_change_made_by_another_instance_is_seen_on_the_next_request(spec, toot_installed):
    assert verdicts.judge(spec.frank.cert).connection.ok
    # Another instance removes the root: same database, none of this process's code runs.
    StoreEntry.objects.filter(store=Store.ROOT).delete()
    TrustSettings.objects.update(generation=TrustSettings.get().generation + 1)
    assert not verdicts.judge(spec.frank.cert).connection.ok


def test_profile_changes_apply_at_once(spec, rich, toot_installed):
    credential, _ = flows.add_thumbprint(rich, sha1_thumbprint(spec.frank.cert), ACTOR)
    assert verdicts.judge(spec.frank.cert).authentication.ok
    flows.remove_credential(rich, credential.pk, ACTOR)
    assert not verdicts.judge(spec.frank.cert).authentication.ok


def test_a_cached_verdict_never_outlives_the_first_expiry_on_its_path(spec):
    short = make_client("Short", spec.chug, not_after=timezone.now() + dt.timedelta(seconds=5))
    connection = trust.connect(short.cert, [], trust.TrustConfig(roots=(spec.chug.cert,)), NOW)
    assert connection.ok
    assert 0.0 < verdicts.connection_lifetime(connection, timezone.now()) <= 5.0


def test_a_different_chain_is_a_different_verdict(spec, count_validations):
    install(Store.ROOT, spec.toot)
    assert not verdicts.judge(spec.frank.cert).connection.ok
    assert verdicts.judge(spec.frank.cert, [spec.chug.cert]).connection.ok
    assert len(count_validations) == 2


def test_an_explicit_moment_is_never_cached(spec, toot_installed, count_validations):
    verdicts.judge(spec.frank.cert, at=timezone.now())
    verdicts.judge(spec.frank.cert, at=timezone.now())
    assert len(count_validations) == 2
