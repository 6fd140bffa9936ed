"""A membership filter over a stored CRL's revoked serials, so that sign-on asks the database only
about a serial that may be on the CRL.

It is a Bloom filter (``rbloom``), sized for about 1% false positives: about 1.2 MB for a CRL of
1,000,000 serials. A Bloom filter never reports a member absent, so it can only save a query,
never let a revoked serial through; a false positive costs the query the decision made anyway.
The filter is stored with the CRL, so its hash must be the same in every process: it is BLAKE2b
over the serial's text, never Python's per-process ``hash()``.

A CRL stored without a filter (before the filter existed), or whose filter cannot be read, has
none: ``load`` gives ``None`` and the caller queries the database for every serial, until the
upgrade (migration 0012) or ``certs crls fetch`` builds it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from rbloom import Bloom

# Bumped when the encoding or the hash changes: a filter of another version is not read.
VERSION = b"SF1:"
FALSE_POSITIVE_RATE = 0.01


def serial_hash(serial: str) -> int:
    """A 128-bit signed integer, the same in every process (the range ``rbloom`` asks for)."""
    return int.from_bytes(hashlib.blake2b(serial.encode(), digest_size=16).digest(), "big", signed=True)


class Builder:
    """Collects serials as the CRL's entries are stored; ``dump()`` gives the bytes to store."""

    def __init__(self, expected: int):
        self.bloom = Bloom(max(expected, 1), FALSE_POSITIVE_RATE, serial_hash)

    def add(self, serial: str) -> None:
        self.bloom.add(serial)

    def dump(self) -> bytes:
        return VERSION + self.bloom.save_bytes()


def load(data) -> Bloom | None:
    """The filter stored with a CRL, or ``None`` when there is none or it cannot be read (then
    every lookup queries the database)."""
    if not data:
        return None
    data = bytes(data)
    if not data.startswith(VERSION):
        return None
    try:
        return Bloom.load_bytes(data[len(VERSION) :], serial_hash)
    except Exception:  # noqa: BLE001 - any unreadable filter means: no filter
        return None


def build(serials: Iterable[str], expected: int) -> bytes:
    builder = Builder(expected)
    for serial in serials:
        builder.add(serial)
    return builder.dump()
