"""Benchmark: the trust engine's decision time, first-seen and repeat, at 1,000 and 1,000,000 users.

    .venv/bin/python bench/engine.py
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/engine.py

For each size, a throwaway database (as bench/common.py makes it) gets that many users,
each with an accepted thumbprint on the profile, a root and an intermediate CA. Then
``flows.judge`` decides for certificates signed by the intermediate whose thumbprints are on
random users' profiles:

- first-seen: a certificate the process has not judged before (path validation runs);
- repeat: the same certificate again (the path-validation verdict comes from the cache; the
  profile lookup always reads the database, so a removed thumbprint is refused at once).

The figures to compare are the ratios between the sizes (target: within 1.2x).
BENCH_SIZES (default "1000,1000000") and BENCH_CERTS (default 300) change the run.
"""

import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import decision_times, throwaway_database  # noqa: E402

SIZES = [int(s) for s in os.environ.get("BENCH_SIZES", "1000,1000000").split(",")]
CERTS = int(os.environ.get("BENCH_CERTS", "300"))


def populate(count: int) -> None:
    """``count`` users, each with one accepted thumbprint (of a certificate nobody presents)."""
    import hashlib

    from django.db import transaction

    from certs.models import Credential, CredentialKind
    from users.models import User

    batch_size = 10_000
    for start in range(0, count, batch_size):
        with transaction.atomic():
            users = User.objects.bulk_create(
                [
                    User(
                        username=f"user{i:07d}",
                        username_key=f"user{i:07d}",
                        full_name=f"User {i}",
                        full_name_key=f"user {i}",
                        password="!",
                        https_mode="cert",
                    )
                    for i in range(start, min(start + batch_size, count))
                ]
            )
            if users[0].pk is None:  # backends that do not return keys from bulk inserts
                users = list(User.objects.filter(username__in=[u.username for u in users]))
            Credential.objects.bulk_create(
                [
                    Credential(
                        user=user,
                        kind=CredentialKind.THUMBPRINT,
                        value=(digest := hashlib.sha1(user.username.encode()).hexdigest().upper()),
                        key=digest,
                        added_by_name="bench",
                    )
                    for user in users
                ]
            )


def measure(label: str, count: int) -> dict:
    from django.core.management import call_command
    from django.db import connection

    from certs import flows, verdicts
    from certs.models import Credential, CredentialKind, Store
    from certs.x509 import sha1_thumbprint
    from tests.pki import make_client, make_intermediate, make_root
    from users.models import User

    call_command("flush", verbosity=0, interactive=False)
    started = time.perf_counter()
    populate(count)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"  {count:,} users with a thumbprint each, made in {time.perf_counter() - started:.1f} s")

    root = make_root("Bench Root")
    ca = make_intermediate("Bench CA", root)
    flows.add_to_store(Store.ROOT, [root.cert], "bench")
    flows.add_to_store(Store.INTERMEDIATE, [ca.cert], "bench")
    certs = [make_client(f"Client {i}", ca).cert for i in range(CERTS)]
    chooser = random.Random(7)
    picked = {f"user{chooser.randrange(count):07d}" for _ in range(CERTS * 2)}
    owners = list(User.objects.filter(username__in=picked)[:CERTS])
    for cert, owner in zip(certs, owners, strict=False):
        Credential.objects.create(
            user=owner, kind=CredentialKind.THUMBPRINT, value=sha1_thumbprint(cert), added_by_name="bench"
        )

    verdicts.clear_caches()
    verdicts.judge(make_client("Warm-up", ca).cert)  # load the configuration once
    return decision_times(certs, lambda verdict: (verdict.authentication.ok, verdict.authentication.reasons))


def main() -> None:
    with throwaway_database() as where:
        print(f"decision time on {where}, median of {CERTS} certificates")
        results = {}
        for size in SIZES:
            results[size] = measure(f"{size:,}", size)

    print(f"{'users':>12} {'first-seen ms':>14} {'repeat ms':>10}")
    for size, figures in results.items():
        print(f"{size:>12,} {figures['first']:>14.3f} {figures['repeat']:>10.3f}")
    if len(SIZES) > 1:
        small, large = results[SIZES[0]], results[SIZES[-1]]
        print(
            f"ratio {SIZES[-1]:,} / {SIZES[0]:,}: first-seen {large['first'] / small['first']:.2f}x, "
            f"repeat {large['repeat'] / small['repeat']:.2f}x (target: within 1.2x)"
        )
        print(f"repeat / first-seen at {SIZES[0]:,}: {small['repeat'] / small['first']:.2f}x")


if __name__ == "__main__":
    main()
