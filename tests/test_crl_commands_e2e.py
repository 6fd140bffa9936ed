"""``certs crls add`` as an admin or cron runs it, in a process of its own: a CRL larger than the
limit on uploaded files is taken (up to the limit for fetched CRLs), and the load runs at a lower
CPU priority so that sign-on keeps the processor; in-process (``call_command``, a web worker)
the caller's priority is left alone."""

import io
import os
import subprocess
import sys
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


def test_a_large_crl_is_added_from_the_command_line_at_a_lower_priority(app, tmp_path):
    root = make_root("Large Root")
    ca = make_intermediate("Large CA", root)
    for area, issued in (("roots", root), ("intermediates", ca)):
        path = tmp_path / f"{area}.pem"
        path.write_bytes(issued.cert.public_bytes(serialization.Encoding.PEM))
        app.manage("certs", area, "add", str(path))
    big = tmp_path / "large.crl"
    big.write_bytes(make_large_crl(ca, 200_000))
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
