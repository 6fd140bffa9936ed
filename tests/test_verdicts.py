"""Verdicts as sign-on reaches them: the cached trust configuration and path-validation verdicts."""

import datetime as dt

import pytest
from cryptography import x509
from django.utils import timezone

from certs import flows, trust, verdicts
from certs.models import Store, StoreEntry, TrustSettings
from certs.x509 import sha1_thumbprint
from tests.conftest import ACTOR, install
from tests.pki import NOW, make_client

pytestmark = pytest.mark.django_db


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


# --- memory: bounded in bytes, nothing kept of what was refused -----------------------------------


def test_a_refused_verdict_is_kept_without_its_chain(spec, toot_installed):
    verdict = verdicts.judge(spec.stranger.cert, [spec.other_root.cert])
    assert not verdict.connection.ok
    entries, size = verdicts.cache_usage()
    assert entries == 1 and size <= 1024


def test_the_verdict_cache_stays_within_its_bytes(spec, toot_installed, monkeypatch):
    monkeypatch.setattr(verdicts, "CONNECTION_CACHE_BYTES", 40_000)
    verdicts.clear_caches()
    big = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.55555.1"), b"\x04\x82\x1f\x40" + b"x" * 8000)
    for number in range(30):
        issued = make_client(f"Large {number}", spec.chug, extensions=[(big, False)])
        assert verdicts.judge(issued.cert, [spec.chug.cert]).connection.ok
    entries, size = verdicts.cache_usage()
    assert size <= 40_000 and 0 < entries < 30
