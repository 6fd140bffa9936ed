"""Benchmark: revocation by CRL with a CRL of 1,000,000 revoked serials.

    .venv/bin/python bench/revocation.py
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/revocation.py

In a throwaway database (as bench/common.py makes it): a root, an intermediate CA and a CRL
of that CA with BENCH_CRL_SIZE (default 1,000,000) random revoked serials (as CAs make them, so
they reach the lookup index in no order), a third of them with a reason code. It prints:

- the time and peak memory (resident set of this process) to add that CRL, and to refresh it
  (add the next CRL, which replaces the first);
- the decision time for certificates of that CA, first-seen and repeat (median of BENCH_CERTS,
  default 300), with the policy "off" and with "crl, refuse": the ratio is the cost of
  revocation checking (target: within 1.2x). Both are measured with the CRL stored, in
  BENCH_ROUNDS (default 3) alternating rounds, and the median round of each is shown, so that
  a machine busy with other work weighs on both alike;
- sign-on decisions per second (first-seen: no verdict cache, policy "crl, refuse") while a
  refresh by another CRL of that size runs in another process (``manage.py certs crls add``, as
  an admin or cron runs it, at its lower CPU priority), against the rate without one
  (BENCH_RATE_SECONDS, default 10, before and after it): the ratio says whether sign-on keeps its
  throughput during a refresh. As the machine's own reference, the same rate while another
  process only keeps a core busy for as long: on a machine of two cores shared with other
  work, that alone can halve it.
"""

import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import decision_times, throwaway_database  # noqa: E402

SIZE = int(os.environ.get("BENCH_CRL_SIZE", "1000000"))
CERTS = int(os.environ.get("BENCH_CERTS", "300"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
RATE_SECONDS = float(os.environ.get("BENCH_RATE_SECONDS", "10"))


def big_crl(ca, number: int) -> bytes:
    """A CRL of ``SIZE`` serials, made in a child process so that this process's peak memory is
    the store's alone."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1) as pool:
        return pool.submit(_big_crl, ca.pem, ca.key_pem, number, SIZE).result()


def _big_crl(cert_pem: bytes, key_pem: bytes, number: int, size: int) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from tests.pki import Issued, make_large_crl

    ca = Issued(x509.load_pem_x509_certificate(cert_pem), serialization.load_pem_private_key(key_pem, None))
    return make_large_crl(ca, size, number=number)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def decisions(certs) -> dict:
    from certs import verdicts

    verdicts.clear_caches()
    return decision_times(certs, lambda verdict: (verdict.connection.ok, verdict.connection.reason))


def rate(certs, *, seconds: float = 0.0, until: subprocess.Popen | None = None) -> float:
    """Decisions per second, every one first-seen (the verdict cache off), for ``seconds`` or
    until the process ``until`` ends."""
    from certs import verdicts

    count, started = 0, time.perf_counter()
    while True:
        for cert in certs:
            verdict = verdicts.judge(cert)
            assert verdict.connection.ok, verdict.connection.reason
            count += 1
            elapsed = time.perf_counter() - started
            if (until.poll() is not None) if until is not None else elapsed >= seconds:
                return count / elapsed


def during(certs, command: list[str], label: str) -> tuple[float, float]:
    """(decisions per second while ``command`` runs in another process, its seconds)."""
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # noqa: S603
    rate_during = rate(certs, until=child)
    took = time.perf_counter() - started
    output = child.communicate()[0].decode()
    assert child.returncode == 0, f"{label}: {output}"
    return rate_during, took


def during_refresh(certs, crl: bytes) -> None:
    """The decision rate while another process refreshes the CRL with ``manage.py certs crls add``
    (as an admin or cron runs it, at its lower CPU priority), against the rate without; and, as
    the machine's own reference, while another process only keeps one core busy for as long at
    the app's priority (what any batch job would cost sign-on on this machine)."""
    from django.conf import settings

    path = Path(os.environ["MFT_DATA_DIR"]) / "refresh.crl"
    path.write_bytes(crl)
    settings.MFT_VERDICT_CACHE_SECONDS = 0
    before = rate(certs, seconds=RATE_SECONDS)
    refresh = [sys.executable, "manage.py", "certs", "crls", "add", str(path)]
    during_add, took = during(certs, refresh, "certs crls add")
    after = rate(certs, seconds=RATE_SECONDS)
    alone = (before + after) / 2
    busy = [sys.executable, "-c", f"import time\nend = time.time() + {took:.1f}\nwhile time.time() < end: pass"]
    during_busy, _ = during(certs, busy, "a busy loop")
    print(
        f"sign-on, first-seen decisions per second: {before:.0f} before and {after:.0f} after a refresh, "
        f"{during_add:.0f} while another process refreshed the CRL ({took:.1f} s): ratio {during_add / alone:.2f}; "
        f"reference: {during_busy:.0f} while a plain busy loop ran as long: ratio {during_busy / alone:.2f}"
    )


def measure() -> None:
    from certs import crls, flows
    from certs.models import Store
    from tests.pki import crl_der, make_client, make_crl, make_intermediate, make_root

    root = make_root("Bench Root")
    ca = make_intermediate("Bench CA", root)
    flows.add_to_store(Store.ROOT, [root.cert], "bench")
    flows.add_to_store(Store.INTERMEDIATE, [ca.cert], "bench")
    crls.add_crl_file(crl_der(make_crl(root)), "bench")
    certs = [make_client(f"Client {i}", ca).cert for i in range(CERTS)]

    started = time.perf_counter()
    first_crl = big_crl(ca, 1)
    second_crl = big_crl(ca, 2)
    third_crl = big_crl(ca, 3)
    print(
        f"  three CRLs of {SIZE:,} serials ({len(first_crl) / 1e6:.0f} MB each) made in "
        f"{time.perf_counter() - started:.1f} s; peak memory so far {peak_mb():.0f} MB"
    )

    before = peak_mb()
    started = time.perf_counter()
    outcome, refused = crls.add_crl_file(first_crl, "bench")
    assert not refused, refused
    print(f"  load: {time.perf_counter() - started:.1f} s, peak memory {peak_mb():.0f} MB (before: {before:.0f} MB)")
    started = time.perf_counter()
    outcome, refused = crls.add_crl_file(second_crl, "bench")
    assert not refused, refused
    print(f"  refresh (the next CRL replaces it): {time.perf_counter() - started:.1f} s, peak {peak_mb():.0f} MB")

    rounds: dict[str, list[dict]] = {"off": [], "crl": []}
    for _ in range(ROUNDS):
        for check in rounds:
            crls.set_policy("bench", check=check, when_unknown="refuse")
            rounds[check].append(decisions(certs))
    off, checked = ({k: statistics.median(r[k] for r in rounds[c]) for k in ("first", "repeat")} for c in rounds)
    print(f"{'policy':>16} {'first-seen ms':>14} {'repeat ms':>10}")
    print(f"{'off':>16} {off['first']:>14.3f} {off['repeat']:>10.3f}")
    print(f"{'crl, refuse':>16} {checked['first']:>14.3f} {checked['repeat']:>10.3f}")
    print(
        f"ratio crl / off: first-seen {checked['first'] / off['first']:.2f}x, "
        f"repeat {checked['repeat'] / off['repeat']:.2f}x (target: within 1.2x)"
    )
    crls.set_policy("bench", check="crl", when_unknown="refuse")
    during_refresh(certs, third_crl)


def main() -> None:
    with throwaway_database() as where:
        print(f"revocation on {where}, a CRL of {SIZE:,} serials, {CERTS} certificates")
        measure()


if __name__ == "__main__":
    main()
