"""Verdicts as sign-on reaches them: the trust configuration from the database, the users a
certificate could concern, and the engine's verdict, with the caches that keep this fast.

The pure rules are in ``trust``; this module only feeds them. Sign-on, the doctor, the
command line and every page that judges a certificate come here, so they cannot disagree.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from dataclasses import dataclass

import cachetools
from cryptography import x509
from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from users.models import User

from . import ocsp_client, serial_filter, trust
from . import revocation as rev
from .models import Credential, CredentialKind, Crl, RevocationPolicy, RevokedSerial, Store, StoreEntry, TrustSettings
from .x509 import format_thumbprint, name_key, sha1_thumbprint, sha256_fingerprint, single_common_name

# Path-validation verdicts kept per process, bounded in bytes: each entry weighs about its
# path's certificates (a refused one keeps no certificates at all).
CONNECTION_CACHE_BYTES = 32 * 1024 * 1024

_lock = threading.Lock()
_config: tuple[int, trust.TrustConfig] | None = None
_connections: cachetools.TLRUCache | None = None


def clear_caches() -> None:
    """Forget the cached configuration and verdicts (the next judgement reads the database)."""
    global _config, _connections
    with _lock:
        _config = None
        _connections = None


def trust_config() -> trust.TrustConfig:
    """The current configuration, reloaded only when its generation changed."""
    return _current_config()[1]


def _current_config(known: tuple[int, bool] | None = None) -> tuple[int, trust.TrustConfig]:
    """(generation, configuration); ``known`` is (generation, match_cn) when already read."""
    global _config
    generation, match_cn = known or TrustSettings.current()
    cached = _config
    if cached is not None and cached[0] == generation:
        return cached
    by_store: dict[str, list[x509.Certificate]] = {s: [] for s in Store.values}
    for entry in StoreEntry.objects.select_related("certificate").order_by("id"):
        by_store[entry.store].append(entry.certificate.to_x509())
    config = trust.TrustConfig(
        roots=tuple(by_store[Store.ROOT]),
        intermediates=tuple(by_store[Store.INTERMEDIATE]),
        approved=tuple(by_store[Store.APPROVED]),
        match_cn=match_cn,
        revocation=revocation_config(),
    )
    with _lock:
        _config = (generation, config)
    return _config


def filtered_lookup(filters: dict) -> rev.Lookup:
    """``lookup``, asked only when the CRL's filter (by CRL id) may hold the serial. A CRL without
    a filter (stored before filters existed, or whose filter cannot be read) is always queried: a
    missing filter never means "not revoked"."""

    def find(crl_id: int, serial: str) -> list[rev.Entry]:
        found = filters.get(crl_id)
        if found is not None and serial not in found:
            return []
        return lookup(crl_id, serial)

    return find


def lookup(crl_id: int, serial: str) -> list[rev.Entry]:
    """The entries for a serial on one stored CRL: one indexed query, in SQL (sign-on runs it for
    every certificate on a path it has not judged yet; the ORM would cost several times more)."""
    table, q = RevokedSerial._meta.db_table, connection.ops.quote_name
    sql = (
        f"SELECT {q('issuer_key')}, {q('revoked_at')}, {q('reason')} FROM {q(table)} "  # noqa: S608 - names only
        f"WHERE {q('crl_id')} = %s AND {q('serial')} = %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [crl_id, serial])
        return [rev.Entry(serial, issuer_key, _aware(when), reason) for issuer_key, when, reason in cursor.fetchall()]


def _aware(value) -> dt.datetime:
    """A datetime column as read by SQL: text on SQLite, naive or aware elsewhere; always UTC."""
    if isinstance(value, str):
        value = parse_datetime(value)
    if timezone.is_naive(value):
        value = value.replace(tzinfo=dt.UTC)
    return value


def record_of(row: Crl, signers: dict[int, x509.Certificate]) -> rev.CrlRecord:
    signer = signers.get(row.signer_id)
    if signer is None:
        signer = signers[row.signer_id] = row.signer.to_x509()
    return rev.CrlRecord(
        id=row.pk,
        issuer=x509.Name.from_rfc4514_string(row.issuer),
        signer=signer,
        this_update=row.this_update,
        next_update=row.next_update,
        number=int(row.number) if row.number else None,
        delta_base=int(row.delta_base) if row.delta_base else None,
        scope=rev.Scope.from_dict(row.scope),
    )


def revocation_config() -> rev.RevocationConfig:
    """Policies and CRL descriptions (never their entries, only their serials' filters), read when
    the trust generation changes."""
    default, overrides = rev.Policy(), []
    for row in RevocationPolicy.objects.select_related("ca"):
        if row.ca_sha1:
            if row.ca is not None:
                overrides.append((row.ca.to_x509(), policy_of(row)))
        else:
            default = policy_of(row)
    signers: dict[int, x509.Certificate] = {}
    rows = list(Crl.objects.defer("der").select_related("signer"))
    crls = tuple(record_of(row, signers) for row in rows)
    filters = {row.pk: found for row in rows if (found := serial_filter.load(row.serial_filter)) is not None}
    return rev.RevocationConfig(
        default=default,
        overrides=rev.override_map(overrides),
        crls=crls,
        lookup=filtered_lookup(filters),
        ask=ocsp_client.ask,
    )


def policy_of(row: RevocationPolicy) -> rev.Policy:
    return rev.Policy(row.check_by, row.when_unknown, row.grace_hours)


def connection_lifetime(connection: trust.Connection, now: dt.datetime) -> float:
    """Seconds a verdict may be reused: a short while, never past the first expiry on its path, nor
    past the moment a CRL or OCSP answer it relied on goes stale."""
    lifetime = float(settings.MFT_VERDICT_CACHE_SECONDS)
    if connection.ok:
        first_expiry = min(c.not_valid_after_utc for c in connection.path)
        lifetime = min(lifetime, (first_expiry - now).total_seconds())
    for status in connection.revocation:
        if status.valid_until is not None:
            lifetime = min(lifetime, (status.valid_until - now).total_seconds())
    return max(lifetime, 0.0)


def _connection_cache() -> cachetools.TLRUCache:
    global _connections
    if _connections is None:
        _connections = cachetools.TLRUCache(
            maxsize=CONNECTION_CACHE_BYTES,
            ttu=lambda _key, connection, now: now + connection_lifetime(connection, timezone.now()),
            getsizeof=_weight,
        )
    return _connections


def cache_usage() -> tuple[int, int]:
    """(entries, bytes) of this process's verdict cache."""
    cache = _connection_cache()
    with _lock:
        return len(cache), int(cache.currsize)


def _weight(connection: trust.Connection) -> int:
    return sum(len(c.tbs_certificate_bytes) + 512 for c in connection.path) + 512


def connection_for(cert, chain, generation: int, config: trust.TrustConfig, at: dt.datetime | None = None):
    """Path validation, cached per certificate, chain and configuration generation.

    The cache is keyed by the certificates' SHA-256 and the generation that every change to
    the stores bumps, so a removed root is never honoured from the cache. A verdict for an
    explicit moment ``at`` is never cached.
    """
    if at is not None or settings.MFT_VERDICT_CACHE_SECONDS <= 0:
        return trust.connect(cert, chain, config, at or timezone.now())
    key = (generation, sha256_fingerprint(cert), tuple(sha256_fingerprint(c) for c in chain))
    cache = _connection_cache()
    with _lock:
        found = cache.get(key)
    if found is not None:
        return found
    connection = trust.connect(cert, chain, config, timezone.now())
    # A refusal is kept without the chain it followed (that is for display, which never reads
    # the cache): a client sending endless unknown certificates leaves only small entries.
    kept = connection if connection.ok else dataclasses.replace(connection, path=())
    with _lock:
        cache[key] = kept
    return kept


@dataclass(frozen=True)
class Candidate:
    """A user a certificate could concern, with the profile the rules read.

    The profile holds only the entries that concern this certificate (its thumbprint, its CN).
    """

    user: User
    profile: trust.Profile


def candidates(cert, username: str | None = None) -> tuple[int, trust.TrustConfig, dict[str, Candidate]]:
    """The trust configuration, and the users a certificate could concern, by username.

    With a username, that user alone (or nobody). Without, every user who has the
    certificate's thumbprint or CN on their profile, and, when the Match Cert CN option is
    on, every user whose username or full name is the CN. One query (two with Match CN).
    """
    sha1 = sha1_thumbprint(cert)
    # A CN that no rule may match (none, several, blank, control characters) is not looked up.
    cn = None if trust.cn_problem(cert) else single_common_name(cert)
    generation, match_cn, rows = Credential.objects.candidates(
        sha1, cn, name_key(username) if username is not None else None
    )
    generation, config = _current_config((generation, match_cn))
    users: dict[int, User] = {}
    entries: dict[int, tuple[set, set]] = {}
    for row in rows:
        users.setdefault(row.pk, row)
        thumbprints, cns = entries.setdefault(row.pk, (set(), set()))
        if row.matched_kind is not None:
            (thumbprints if row.matched_kind == CredentialKind.THUMBPRINT else cns).add(row.matched_key)
    # Everyone the CN names, by username or full name: the Match Cert CN rule's candidates, and
    # what tells whether a name is shared (then it names nobody). Read only with the rule on.
    named = (
        list(User.objects.filter(Q(username_key=name_key(cn)) | Q(full_name_key=name_key(cn))))
        if (config.match_cn and cn)
        else []
    )
    named_pks = {user.pk for user in named}
    if username is None:
        for user in named:
            users.setdefault(user.pk, user)
    found = {}
    for pk, user in users.items():
        thumbprints, cns = entries.get(pk, ((), ()))
        namesakes = tuple(other.username for other in named if other.pk != pk) if pk in named_pks else ()
        found[user.username] = Candidate(user, profile_of(user, thumbprints, cns, namesakes))
    return generation, config, found


def profile_of(user: User, thumbprints=(), cns=(), namesakes=()) -> trust.Profile:
    return trust.Profile(
        username=user.username,
        full_name=user.full_name,
        is_active=user.is_active,
        thumbprints=frozenset(thumbprints),
        cns=frozenset(cns),
        namesakes=tuple(namesakes),
    )


def judge(cert, chain=(), username: str | None = None, at: dt.datetime | None = None) -> trust.Verdict:
    """The verdict for a presented certificate, exactly as sign-on reaches it."""
    return judge_with_candidates(cert, chain, username, at)[0]


def judge_with_candidates(
    cert, chain=(), username=None, at=None, connection: trust.Connection | None = None
) -> tuple[trust.Verdict, dict[str, User]]:
    """The verdict, and the users it was reached about (by username). ``connection`` is given
    when it is known already (a refusal by the front proxy): then no path is validated."""
    generation, config, found = candidates(cert, username)
    chain = tuple(chain)
    if connection is None:
        connection = connection_for(cert, chain, generation, config, at)
    profiles = [c.profile for c in found.values()]
    verdict = trust.evaluate(
        cert, chain, config, profiles, at or timezone.now(), username=username, connection=connection
    )
    return verdict, {name: c.user for name, c in found.items()}


def verdict_as_dict(verdict: trust.Verdict) -> dict:
    """The verdict as the JSON that ``certs check --json`` prints (a public format)."""

    def link(cert):
        return {"subject": cert.subject.rfc4514_string(), "thumbprint": format_thumbprint(sha1_thumbprint(cert))}

    connection, auth = verdict.connection, verdict.authentication
    return {
        "category": verdict.category,
        "category_text": verdict.category_text,
        "connect": {
            "ok": connection.ok,
            "reason": connection.reason,
            "chain": [link(c) for c in connection.path],
            "anchor": link(connection.anchor) if connection.anchor is not None else None,
            "revocation": [status.as_dict() for status in connection.revocation],
        },
        "authenticate": {
            "ok": auth.ok,
            "user": auth.user,
            "rule": auth.rule,
            "reasons": list(auth.reasons),
        },
    }
