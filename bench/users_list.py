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
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

USERS = int(os.environ.get("BENCH_USERS", "100000"))
RUNS = int(os.environ.get("BENCH_RUNS", "7"))
BENCH_DB = "mft_bench"

FIRST = ["Anna", "Bengt", "Cecilia", "David", "Elin", "Fredrik", "Greta", "Hugo", "Ingrid", "Johan", "Karin"]
LAST = ["Andersson", "Berg", "Carlsson", "Dahl", "Ek", "Forsberg", "Holm", "Jansson", "Lind", "Nilsson", "Strand"]


def prepare_environment(tmp: Path) -> tuple[str, str | None]:
    """Point the settings at a throwaway database; return its description and, for PostgreSQL,
    the maintenance URL to create and drop it with."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mft.settings")
    os.environ["MFT_DATA_DIR"] = str(tmp)
    os.environ["MFT_STATIC_ROOT"] = str(tmp / "static")
    (tmp / "static").mkdir()
    os.environ["MFT_ALLOWED_HOSTS"] = "testserver"
    os.environ["MFT_LOG_LEVEL"] = "WARNING"
    url = os.environ.get("DATABASE_URL", "").strip()
    if not url.startswith(("postgres://", "postgresql://", "pgsql://")):
        if url:
            print("DATABASE_URL is not PostgreSQL; using a temporary SQLite file instead of it.")
        os.environ["DATABASE_URL"] = f"sqlite:///{tmp / 'bench.sqlite3'}"
        return "SQLite (temporary file)", None
    parts = urlsplit(url)
    os.environ["DATABASE_URL"] = urlunsplit(parts._replace(scheme="postgres", path="/" + BENCH_DB))
    maintenance = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    return f"PostgreSQL at {parts.hostname}:{parts.port or 5432} (database {BENCH_DB})", maintenance


def recreate_database(maintenance_url: str, create: bool) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(maintenance_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(BENCH_DB)))
        if create:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(BENCH_DB)))


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
    with tempfile.TemporaryDirectory(prefix="mft-bench-") as tmp:
        where, maintenance = prepare_environment(Path(tmp))
        if maintenance:
            recreate_database(maintenance, create=True)
        try:
            run(where)
        finally:
            if maintenance:
                from django.db import connections

                connections.close_all()
                recreate_database(maintenance, create=False)


def run(where: str) -> None:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from users import flows
    from users.models import InterfaceDefault, SignOnMode, User

    call_command("migrate", verbosity=0, interactive=False)
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
