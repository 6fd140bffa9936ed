"""What the in-process benchmarks share: a throwaway database, and the decision time of the trust engine.

The database never is the developer's. With no DATABASE_URL (or a sqlite:// one) it is a temporary
SQLite file; with a PostgreSQL URL it is a fresh database named mft_bench on that server (the
database named in the URL is not used), dropped at the end. Generated secrets go to a temporary
folder too.
"""

import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

BENCH_DB = "mft_bench"


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


@contextmanager
def throwaway_database() -> Iterator[str]:
    """Django set up on a throwaway database, migrated; yields the database's description."""
    with tempfile.TemporaryDirectory(prefix="mft-bench-") as tmp:
        where, maintenance = prepare_environment(Path(tmp))
        if maintenance:
            recreate_database(maintenance, create=True)
        try:
            import django

            django.setup()
            from django.core.management import call_command

            call_command("migrate", verbosity=0, interactive=False)
            yield where
        finally:
            if maintenance:
                from django.db import connections

                connections.close_all()
                recreate_database(maintenance, create=False)


def decision_times(certs, accepted) -> dict:
    """Median milliseconds for ``verdicts.judge`` to decide each certificate: "first" the first time,
    "repeat" at once again. ``accepted(verdict)`` is (whether the first decision is the one
    expected, why not); any other stops the run."""
    from certs import verdicts

    first, repeat = [], []
    for cert in certs:
        start = time.perf_counter()
        verdict = verdicts.judge(cert)
        first.append(time.perf_counter() - start)
        ok, why = accepted(verdict)
        assert ok, why
        start = time.perf_counter()
        verdicts.judge(cert)
        repeat.append(time.perf_counter() - start)
    return {"first": statistics.median(first) * 1000, "repeat": statistics.median(repeat) * 1000}
