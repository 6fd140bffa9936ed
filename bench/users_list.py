"""Benchmark: the user list, its search and "apply defaults to all users" with 100,000 users.

    .venv/bin/python bench/users_list.py
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/users_list.py

It never touches the developer's data. With no DATABASE_URL (or a sqlite:// one) it works in a
temporary SQLite file; with a PostgreSQL URL it creates a fresh database named mft_bench on that
server (the database named in the URL is not used) and drops it at the end. Generated secrets go
to a temporary folder too. BENCH_USERS and BENCH_RUNS change the size and the number of runs.

Each operation is timed twice: "flow" is the query through users.flows, as the page makes it;
"page" is the whole admin page through Django's test client (routing, session, query,
template). Figures are medians after one warm-up run.
"""

import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import throwaway_database  # noqa: E402

USERS = int(os.environ.get("BENCH_USERS", "100000"))
RUNS = int(os.environ.get("BENCH_RUNS", "7"))

FIRST = ["Anna", "Bengt", "Cecilia", "David", "Elin", "Fredrik", "Greta", "Hugo", "Ingrid", "Johan", "Karin"]
LAST = ["Andersson", "Berg", "Carlsson", "Dahl", "Ek", "Forsberg", "Holm", "Jansson", "Lind", "Nilsson", "Strand"]


def populate(count: int) -> None:
    from certs.x509 import name_key
    from users.models import SignOnMode, User

    modes = SignOnMode.values
    batch = []
    for i in range(count):
        username = f"user{i:06d}"
        # One user in a thousand has a rare middle name: a search that must look at every row.
        middle = " Quixote" if i % 1000 == 7 else ""
        full_name = f"{FIRST[i * 7 % len(FIRST)]}{middle} {LAST[i * 5 % len(LAST)]}"
        batch.append(
            User(
                username=username,
                username_key=name_key(username),
                full_name=full_name,
                full_name_key=name_key(full_name),
                email=f"{username}@example.com",
                password="!",
                is_admin=i % 5000 == 0,
                https_mode=modes[i % len(modes)],
                ftps_mode=modes[i // len(modes) % len(modes)],
            )
        )
        if len(batch) == 5000:
            User.objects.bulk_create(batch)
            batch = []
    User.objects.bulk_create(batch)


def median_ms(action, runs=RUNS, before=None) -> float:
    times = []
    for i in range(runs + 1):
        if before:
            before(i)
        start = time.perf_counter()
        action()
        if i:  # the first run warms caches up
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    with throwaway_database() as where:
        run(where)


def run(where: str) -> None:
    from django.db import connection
    from django.test import Client

    from users import flows
    from users.models import InterfaceDefault, SignOnMode, User

    started = time.perf_counter()
    populate(USERS)
    admin = User.objects.create_user("bench-admin", is_admin=True)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"{USERS:,} users created on {where} in {time.perf_counter() - started:.1f} s")

    client = Client()
    client.force_login(admin)
    deep_key = f"user{USERS - 100:06d}"
    prefix = f"user{(USERS - 1) // 100:04d}"  # the last hundred usernames: the scan reads the whole index

    def page(path, **params):
        def get():
            response = client.get(path, params)
            assert response.status_code == 200, response.status_code

        return get

    listing = [
        ("first page of the list", {}, {}),
        (f"deep page (after {deep_key})", {"after": deep_key}, {"after": deep_key}),
        (f"search: username prefix '{prefix}'", {"query": prefix}, {"q": prefix}),
        ("search: full-name substring 'sson'", {"query": "sson"}, {"q": "sson"}),
        ("search: rare full-name substring 'quixo'", {"query": "quixo"}, {"q": "quixo"}),
    ]
    rows = []
    for label, flow_args, params in listing:
        shown = len(flows.user_page(**flow_args).items)
        flow = median_ms(lambda a=flow_args: flows.user_page(**a))
        rows.append((label, flow, median_ms(page("/users/", **params)), shown))

    preview = median_ms(flows.defaults_preview)
    rows.append(("defaults-apply confirmation (counts)", preview, median_ms(page("/settings/defaults/apply/")), None))

    # Each run flips the HTTPS default, so every run rewrites every user's HTTPS mode.
    def flip(i):
        mode = SignOnMode.CERT if i % 2 == 0 else SignOnMode.PASSWORD
        InterfaceDefault.objects.update_or_create(interface="https", defaults={"mode": mode})

    changed = {}

    def apply_flow():
        changed.update(flows.apply_defaults_to_all("bench"))

    def apply_page():
        modes = flows.interface_defaults()
        response = client.post("/settings/defaults/apply/", {"https_mode": modes["https"], "ftps_mode": modes["ftps"]})
        assert response.status_code == 302, response.status_code

    flow = median_ms(apply_flow, before=flip)
    rows.append(("defaults-apply update (bulk UPDATE)", flow, median_ms(apply_page, before=flip), changed["https"]))

    print(f"median of {RUNS} runs, milliseconds")
    print(f"{'operation':<44} {'flow':>9} {'page':>9} {'rows':>8}")
    print("-" * 73)
    for label, flow, whole, shown in rows:
        print(f"{label:<44} {flow:>9.1f} {whole:>9.1f} {'' if shown is None else format(shown, ','):>8}")


if __name__ == "__main__":
    main()
