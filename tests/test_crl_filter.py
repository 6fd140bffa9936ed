"""The filter of a stored CRL's serials: sign-on asks the database only about a serial the filter
may hold, and no filter, however stored, ever lets a revoked serial through."""

import io
import os
import subprocess
import sys

import pytest
from cryptography import x509
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test.utils import CaptureQueriesContext
from hypothesis import given, settings
from hypothesis import strategies as st

from certs import crls, flows, org_ca, serial_filter, verdicts
from certs.models import Crl, RevokedSerial, Store
from certs.revocation import serial_key
from tests.conftest import ACTOR, add_crl
from tests.pki import make_client, make_crl

pytestmark = pytest.mark.django_db
SERIALS = st.integers(min_value=-(2**159), max_value=2**159 - 1)


def policy():
    crls.set_policy(ACTOR, check="crl", when_unknown="refuse")
    verdicts.clear_caches()


def assert_every_serial_found() -> int:
    """Every stored CRL's every serial is in its filter, and the lookup sign-on uses finds it."""
    lookup = verdicts.trust_config().revocation.lookup
    checked = 0
    for row in Crl.objects.all():
        found = serial_filter.load(row.serial_filter)
        assert found is not None, f"CRL {row.pk} was stored without a filter"
        for serial in RevokedSerial.objects.filter(crl_id=row.pk).values_list("serial", flat=True):
            assert serial in found
            assert any(entry.serial == serial for entry in lookup(row.pk, serial))
            checked += 1
    return checked


def test_every_serial_of_a_crl_its_refresh_and_its_delta_is_found(pki):
    add_crl(make_crl(pki.toot))
    first = [(serial, None) for serial in range(1, 3000, 7)] + [(pki.frank.cert, x509.ReasonFlags.key_compromise)]
    add_crl(make_crl(pki.chug, first, number=1))
    assert assert_every_serial_found() == len(first)
    # The refresh replaces it: its own serials, more of them, each found.
    later = make_client("Later", pki.chug)
    second = [*first, *((serial, None) for serial in range(5000, 9000, 3)), (later.cert, None)]
    add_crl(make_crl(pki.chug, second, number=2))
    assert Crl.objects.filter(delta_base="").count() == 2  # the root's and the refresh
    assert assert_every_serial_found() == len(second)
    delta = make_client("Delta", pki.chug)
    add_crl(make_crl(pki.chug, [(delta.cert, x509.ReasonFlags.superseded), (2**159 - 1, None)], number=3, delta_of=2))
    assert assert_every_serial_found() == len(second) + 2
    policy()
    for cert in (pki.frank.cert, later.cert, delta.cert):
        assert not verdicts.judge(cert).connection.ok


def test_every_serial_the_org_ca_revokes_is_found(settings, rich):
    settings.MFT_PUBLIC_URL = "https://mft.example.com"
    org_ca.create("Example Org CA", ACTOR)
    crls.set_policy(ACTOR, check="crl")
    issued = [org_ca.issue_certificate(rich, ACTOR, password="a password") for _ in range(3)]
    for count, one in enumerate(issued, 1):
        org_ca.revoke(rich, one.certificate.thumbprint, ACTOR, reason="key-compromise")
        verdicts.clear_caches()
        assert assert_every_serial_found() == count
        for revoked in issued[:count]:
            assert not verdicts.judge(revoked.certificate.to_x509()).connection.ok


@pytest.mark.parametrize(
    "stored", [None, b"", b"garbage", serial_filter.VERSION + b"\x00" * 40, b"SF9:" + b"\x01" * 64]
)
def test_a_crl_without_a_readable_filter_still_refuses_its_revoked_serials(pki, stored):
    """As a CRL stored before filters existed, or with a filter that cannot be read: every lookup
    queries the database."""
    add_crl(make_crl(pki.toot))
    add_crl(make_crl(pki.chug, [(pki.frank.cert, x509.ReasonFlags.key_compromise)]))
    Crl.objects.update(serial_filter=stored)
    policy()
    connection_ = verdicts.judge(pki.frank.cert).connection
    assert not connection_.ok and "was revoked on" in connection_.reason
    assert verdicts.judge(make_client("Fine", pki.chug).cert).connection.ok


def test_a_filter_that_says_absent_is_never_asked_of_a_crl_of_another_id(pki):
    """A filter belongs to its CRL: one CRL's filter is never read for another."""
    add_crl(make_crl(pki.toot))
    add_crl(make_crl(pki.chug, [(pki.frank.cert, None)]))
    stranger = serial_filter.build([], 1)
    Crl.objects.exclude(issuer=pki.chug.cert.subject.rfc4514_string()).update(serial_filter=stranger)
    policy()
    assert not verdicts.judge(pki.frank.cert).connection.ok


def test_a_serial_the_filter_rules_out_issues_no_revoked_serial_query(pki):
    add_crl(make_crl(pki.toot))
    add_crl(make_crl(pki.chug, [(serial, None) for serial in range(100, 600)] + [(pki.frank.cert, None)]))
    policy()
    verdicts.trust_config()  # the configuration (and the filters) read once
    found = serial_filter.load(Crl.objects.get(issuer=pki.chug.cert.subject.rfc4514_string()).serial_filter)
    fine = next(
        c
        for c in (make_client(f"Fine {i}", pki.chug).cert for i in range(20))
        if serial_key(c.serial_number) not in found
    )
    table = RevokedSerial._meta.db_table
    with CaptureQueriesContext(connection) as queries:
        assert verdicts.judge(fine).connection.ok
    assert not [q["sql"] for q in queries.captured_queries if table in q["sql"]]
    # A member is still asked about, and refused.
    with CaptureQueriesContext(connection) as queries:
        assert not verdicts.judge(pki.frank.cert).connection.ok
    assert [q["sql"] for q in queries.captured_queries if table in q["sql"]]


@settings(max_examples=200, deadline=None)
@given(st.sets(SERIALS, max_size=400), st.integers(min_value=0, max_value=500))
def test_no_member_is_ever_reported_absent(serials, expected):
    """Whatever the serials, and however far the count guessed is off, every member is found after
    the filter is stored and read back."""
    keys = [serial_key(s) for s in serials]
    found = serial_filter.load(serial_filter.build(keys, expected))
    assert found is not None
    assert all(key in found for key in keys)


def test_the_hash_is_the_same_in_every_process():
    """A stored filter is read by other processes: Python's per-process hash() would not do."""
    code = "from certs.serial_filter import serial_hash; print(serial_hash('1f00a'))"
    seen = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in ("1", "2")
    }
    assert seen == {str(serial_filter.serial_hash("1f00a"))}


@pytest.mark.parametrize("stored", [None, b"garbage", b"SF9:" + b"\x01" * 64])
def test_certs_crls_fetch_gives_a_filter_to_a_crl_that_has_none(pki, stored):
    """A CRL stored before filters existed (or with one of another version) gets its filter from
    cron's ``certs crls fetch``; then a serial it rules out is no longer asked of the database."""
    add_crl(make_crl(pki.toot))
    add_crl(make_crl(pki.chug, [(serial, None) for serial in range(100, 400)] + [(pki.frank.cert, None)]))
    Crl.objects.update(serial_filter=stored)
    out = io.StringIO()
    call_command("certs", "crls", "fetch", stdout=out)
    assert out.getvalue().count("Built the serial filter of CRL id") == 2
    assert assert_every_serial_found() == 301
    policy()
    assert not verdicts.judge(pki.frank.cert).connection.ok
    found = serial_filter.load(Crl.objects.get(issuer=pki.chug.cert.subject.rfc4514_string()).serial_filter)
    fine = next(
        c
        for c in (make_client(f"Fine {i}", pki.chug).cert for i in range(20))
        if serial_key(c.serial_number) not in found
    )
    with CaptureQueriesContext(connection) as queries:
        assert verdicts.judge(fine).connection.ok
    assert not [q["sql"] for q in queries.captured_queries if RevokedSerial._meta.db_table in q["sql"]]
    # Nothing more to build: the next run says nothing of filters.
    out = io.StringIO()
    call_command("certs", "crls", "fetch", stdout=out)
    assert "serial filter" not in out.getvalue()


def test_a_filter_is_never_built_from_part_of_a_crl(pki):
    """A filter missing a serial would let that certificate through: when the entries read are not
    all the CRL's (``entry_count``), none is stored and lookups keep asking the database."""
    add_crl(make_crl(pki.toot))
    add_crl(make_crl(pki.chug, [(pki.frank.cert, None), (12345, None)]))
    row = Crl.objects.get(issuer=pki.chug.cert.subject.rfc4514_string())
    Crl.objects.filter(pk=row.pk).update(serial_filter=None, entry_count=3)
    assert row.pk not in dict(crls.build_missing_filters())
    assert Crl.objects.get(pk=row.pk).serial_filter is None
    # Once every entry is there again (as the count says), it is built.
    Crl.objects.filter(pk=row.pk).update(entry_count=2)
    assert dict(crls.build_missing_filters())[row.pk] == 2


@pytest.mark.django_db(transaction=True)
def test_the_upgrade_builds_the_filters_of_crls_stored_before_them(spec):
    """Migration 0012: a CRL stored by the release before filters gets its filter at the upgrade.
    The CRL is stored by today's code, its filter taken away, and the database taken back to that
    release's schema (0011) before it is migrated forward again."""
    flows.add_to_store(Store.INTERMEDIATE, [spec.chug.cert], ACTOR)
    add_crl(make_crl(spec.chug, [(spec.frank.cert, None), *((serial, None) for serial in range(7, 900, 5))]))
    Crl.objects.update(serial_filter=None)
    try:
        MigrationExecutor(connection).migrate([("certs", "0011_crl_filter")])
        executor = MigrationExecutor(connection)
        old = executor.loader.project_state([("certs", "0011_crl_filter")]).apps
        assert old.get_model("certs", "Crl").objects.get().serial_filter is None
        executor.migrate([("certs", "0012_crl_filter_backfill")])
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    assert assert_every_serial_found() == 180
