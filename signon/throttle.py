"""Throttling password guesses, per username and per address, in the shared cache.

Every failed password (a wrong one, or any password for a username nobody has: the two look
alike from outside) counts against the username and against the client's address. Past the
limit, password attempts for that username, or from that address, are refused without being
checked until the window has passed. Certificates are never throttled: there is nothing to
guess. With ``MFT_CACHE_URL`` naming Redis, the counts are shared by every worker and every
instance; with the embedded default they count per worker.

If the cache cannot be reached, attempts are let through (and the outage logged): a cache
outage must not lock every administrator out.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time

from django.core.cache import cache

from certs.x509 import name_key

logger = logging.getLogger(__name__)

FAILURES_PER_USERNAME = 5
FAILURES_PER_ADDRESS = 20
WINDOW_SECONDS = 15 * 60


def _keys(username: str | None, address: str | None) -> list[tuple[str, int]]:
    keys = []
    if username:
        digest = hashlib.sha256(name_key(username).encode("utf-8", "surrogatepass")).hexdigest()
        keys.append((f"mft:pw:user:{digest}", FAILURES_PER_USERNAME))
    if address:
        keys.append((f"mft:pw:addr:{address}", FAILURES_PER_ADDRESS))
    return keys


def retry_after(username: str | None, address: str | None) -> int | None:
    """Seconds until a password may be tried again for this username from this address, or
    None when it may be tried now."""
    try:
        until = [cache.get(f"{key}:until") for key, _ in _keys(username, address)]
    except Exception:
        logger.exception("The cache cannot be reached; password throttling is off until it can.")
        return None
    waits = [u - time.time() for u in until if u]
    return math.ceil(max(waits)) if waits and max(waits) > 0 else None


def note_failure(username: str | None, address: str | None) -> None:
    """Count a failed password; past a limit, start the wait."""
    try:
        for key, limit in _keys(username, address):
            cache.add(key, 0, WINDOW_SECONDS)
            try:
                failures = cache.incr(key)
            except ValueError:  # expired between add and incr
                cache.set(key, failures := 1, WINDOW_SECONDS)
            if failures >= limit:
                cache.set(f"{key}:until", time.time() + WINDOW_SECONDS, WINDOW_SECONDS)
    except Exception:
        logger.exception("The cache cannot be reached; a failed password was not counted.")


def forget(username: str | None) -> None:
    """A correct password ends the count against the username (not against the address)."""
    try:
        cache.delete_many([key for key, _ in _keys(username, None)])
    except Exception:
        logger.exception("The cache cannot be reached.")
