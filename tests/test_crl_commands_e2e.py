"""``certs crls add`` as an admin or cron runs it, in a process of its own: a CRL larger than the
limit on uploaded files is taken (up to the limit for fetched CRLs), and the load runs at a lower
CPU priority so that sign-on keeps the processor; in-process (``call_command``, a web worker)
the caller's priority is left alone."""

import io
import os
import sqlite3
import subprocess
import sys
import threading
import time

import pytest
from cryptography.hazmat.primitives import serialization
from django.core.management import call_command

from certs import crls, flows
from certs.loading import MAX_FILE_BYTES
from certs.models import Crl, Store
from tests.conftest import ACTOR
from tests.e2e import ROOT, AppServer
from tests.pki import crl_der, make_crl, make_intermediate, make_large_crl, make_root

pytestmark = pytest.mark.e2e


def nice_of(pid: int) -> int | None:
    """The process's nice value (field 19 of /proc/PID/stat), or None once it has ended."""
    try:
        stat = open(f"/proc/{pid}/stat").read()  # noqa: PTH123, SIM115 - read at once
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[16])


@pytest.fixture
def app(tmp_path):
    server = AppServer(tmp_path / "data")
    server.manage("migrate", "--noinput", "-v0")
    yield server
    server.database.drop()


def large_crl(app: AppServer, tmp_path, count: int):
    """A file holding a CRL of ``count`` serials of 'Large CA', whose root and certificate the
    app's stores hold."""
    root = make_root("Large Root")
    ca = make_intermediate("Large CA", root)
    for area, issued in (("roots", root), ("intermediates", ca)):
        path = tmp_path / f"{area}.pem"
        path.write_bytes(issued.cert.public_bytes(serialization.Encoding.PEM))
        app.manage("certs", area, "add", str(path))
    big = tmp_path / "large.crl"
    big.write_bytes(make_large_crl(ca, count))
    return big


def test_a_large_crl_is_added_from_the_command_line_at_a_lower_priority(app, tmp_path):
    big = large_crl(app, tmp_path, 200_000)
    assert MAX_FILE_BYTES < big.stat().st_size < crls.MAX_CRL_BYTES

    command = [sys.executable, "manage.py", "certs", "crls", "add", str(big)]
    child = subprocess.Popen(command, cwd=ROOT, env=app.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # noqa: S603
    own, seen = os.nice(0), set()
    while child.poll() is None:
        if (nice := nice_of(child.pid)) is not None:
            seen.add(nice)
        time.sleep(0.02)
    out, err = child.communicate()
    assert child.returncode == 0, err
    assert "Added the CRL of 'Large CA'" in out and "200000 revoked serials" in out
    assert min(own + crls.BATCH_NICENESS, 19) in seen, f"niceness seen: {sorted(seen)}"


def test_a_crl_above_the_command_lines_limit_is_refused_in_words(app, tmp_path):
    huge = tmp_path / "huge.crl"
    with huge.open("wb") as handle:
        handle.truncate(crls.MAX_CRL_BYTES + 1)
    result = app.manage("certs", "crls", "add", str(huge), check=False)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert f"larger than {crls.MAX_CRL_BYTES:,} bytes" in result.stderr


@pytest.mark.django_db
def test_in_process_the_callers_priority_is_left_alone(spec, tmp_path):
    flows.add_to_store(Store.ROOT, [spec.toot.cert], ACTOR)
    path = tmp_path / "toot.crl"
    path.write_bytes(crl_der(make_crl(spec.toot)))
    before = os.nice(0)
    call_command("certs", "crls", "add", str(path), stdout=io.StringIO())
    call_command("certs", "crls", "fetch", stdout=io.StringIO())
    assert os.nice(0) == before
    assert Crl.objects.count() == 1


class Probe:
    """Another connection to the app's database that, every 10 ms until stopped, opens a
    write transaction (on SQLite the database-wide write lock sign-on's writes take) and reads
    how many entries the CRL being loaded has and whether that CRL counts."""

    def __init__(self, url: str):
        self.url, self.seen, self.stop = url, [], threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def connect(self):
        if self.url.startswith("sqlite:///"):
            connection = sqlite3.connect(self.url.removeprefix("sqlite:///"), timeout=60, isolation_level=None)
            connection.execute("CREATE TABLE IF NOT EXISTS probe (at REAL)")
            return connection, "BEGIN IMMEDIATE", "INSERT INTO probe VALUES (?)", "?"
        import psycopg

        connection = psycopg.connect(self.url, autocommit=True)
        connection.execute("CREATE TABLE IF NOT EXISTS probe (at double precision)")
        return connection, "BEGIN", "INSERT INTO probe VALUES (%s)", "%s"

    def run(self):
        connection, begin, insert, mark = self.connect()
        query = "SELECT c.id, c.complete, (SELECT count(*) FROM certs_revokedserial r WHERE r.crl_id = c.id) "
        query += "FROM certs_crl c WHERE c.issuer_display = " + mark
        while not self.stop.is_set():
            connection.execute(begin)
            self.seen.extend(connection.execute(query, ["Large CA"]).fetchall())
            connection.execute(insert, [time.time()])
            connection.execute("COMMIT")
            self.stop.wait(0.01)  # as sign-ons come: a write now and then, not one after another
        connection.close()


def test_writes_go_on_while_a_large_crl_loads_and_a_partial_crl_never_counts(app, tmp_path):
    """Other writers (sign-on's sessions and audit events) go on while a large CRL loads: on
    SQLite, which has one writer at a time, the entries are committed batch by batch and other
    writes get in between the batches instead of waiting for the whole load. Until every entry
    is written the CRL does not count."""
    big = large_crl(app, tmp_path, 150_000)
    probe = Probe(app.database.url)
    probe.thread.start()
    try:
        out = app.manage("certs", "crls", "add", str(big)).stdout
    finally:
        probe.stop.set()
        probe.thread.join(30)
    assert "150000 revoked serials" in out
    assert [seen for seen in probe.seen if not seen[1]], "no write got in while the CRL was being loaded"
    assert not [seen for seen in probe.seen if seen[1] and seen[2] != 150_000], "a partly written CRL counted"
    if app.database.url.startswith("sqlite"):
        # SQLite has one writer at a time: other writes got in between the batches.
        assert [seen for seen in probe.seen if 0 < seen[2] < 150_000], "the load held the write lock throughout"
    assert tuple(probe.seen[-1][1:]) in ((True, 150_000), (1, 150_000))
