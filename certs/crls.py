"""The CRL store and the revocation policies: adding and removing CRLs, setting policies, and the
``RevocationConfig`` the trust engine reads.

A CRL is stored only when a CA the app knows (the trusted root store, the intermediate pool or
the approved CA list) verifies its signature. Its revoked serials are stored as rows in
batches, so a lookup at sign-on is one indexed query and a CRL of a million entries loads in
seconds. Every change records an audit event and bumps the trust generation, so every instance
and every cached verdict sees it at once.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice
from urllib.error import HTTPError, URLError
from urllib.request import HTTPRedirectHandler, Request, build_opener

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.http import http_date

from audit.models import AuditEvent

from . import revocation as rev
from . import serial_filter
from .flows import Change, FlowError, Outcome
from .flows import _comment as pem_comment
from .loading import CertificateLoadError, load_certificates
from .models import (
    Certificate,
    Credential,
    Crl,
    RevocationCheck,
    RevocationPolicy,
    RevokedSerial,
    StoreEntry,
    TrustSettings,
    WhenUnknown,
)
from .x509 import display_name, format_thumbprint, parse_thumbprint

logger = logging.getLogger(__name__)

BATCH = 10_000
# On SQLite, entries written or deleted per transaction: other writers wait for one such write at
# most (about half a second on a 2-core machine); smaller ones write the same index pages again
# and again (a million entries in 10,000s took twice as long as in one transaction).
SQLITE_WRITE_ROWS = 50_000
# SQLite's page cache while a CRL's entries are written, in KiB (its default is 2 MB).
SQLITE_LOAD_CACHE_KIB = 128 * 1024
PEM_CERTIFICATE = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)
# A CRL is "soon stale" when its next update is this close.
SOON_STALE = timedelta(hours=24)


# --- reading the store -----------------------------------------------------------------------


def _known_cas() -> list[Certificate]:
    ids = StoreEntry.objects.values_list("certificate_id", flat=True)
    return list(Certificate.objects.filter(id__in=ids))


def _policy(row: RevocationPolicy) -> rev.Policy:
    return rev.Policy(row.check_by, row.when_unknown, row.grace_hours)


def default_policy() -> rev.Policy:  # noqa: D103
    row = RevocationPolicy.objects.filter(ca_sha1="").first()
    return _policy(row) if row else rev.Policy()


def stored_crls():
    """The stored CRLs as ``certs crls list`` shows them (without their DER)."""
    return Crl.objects.defer("der", "serial_filter").select_related("signer")


# --- adding and removing CRLs ----------------------------------------------------------------


@dataclass
class Added:
    crl: Crl | None
    message: str


def read_crl_file(data: bytes, filename: str = ""):
    """(CRLs, certificates) in a file: DER or PEM CRLs, and any certificates given beside them (a
    separate CRL-signing certificate)."""
    label = f"{filename}: " if filename else ""
    if b"-----BEGIN" in data:
        certs = []
        for block in PEM_CERTIFICATE.findall(data):
            try:
                certs.extend(load_certificates(block))
            except CertificateLoadError as exc:
                raise FlowError(f"{label}a certificate in the file cannot be read: {exc}") from None
        try:
            crls = rev.read_crls(data) if b"-----BEGIN X509 CRL-----" in data or not certs else []
        except rev.CrlError as exc:
            raise FlowError(f"{label}{exc}") from None
        return crls, certs
    try:
        return rev.read_crls(data), []
    except rev.CrlError as exc:
        try:
            return [], load_certificates(data, filename=filename)
        except CertificateLoadError:
            raise FlowError(f"{label}{exc}") from None


def add_crl_files(
    files: list[tuple[str, bytes]],
    actor,
    *,
    source_address=None,
    source_url: str = "",
    added: list[Crl] | None = None,
) -> tuple[Outcome, list[str]]:
    """Add every CRL in the files (DER, or PEM with any number of CRLs): what was done, and each
    refusal with its reason. Each CRL stands alone: one refused does not stop the others.
    Certificates among the files may be the separate CRL-signing certificate of a CRL. The rows
    stored are appended to ``added`` when it is given."""
    read = [(name, *read_crl_file(data, name)) for name, data in files]
    delegated = [cert for _, _, certs in read for cert in certs]
    outcome, refused = Outcome(), []
    for name, crls, _ in read:
        for crl in crls:
            row = _add_one(crl, actor, name, delegated, outcome, refused, source_address, source_url)
            if row is not None and added is not None:
                added.append(row)
    if not any(crls for _, crls, _ in read):
        raise FlowError("No CRL was given: the files hold certificates only.")
    return outcome, refused


def add_crl_file(
    data: bytes, actor, *, filename: str = "", source_address=None, added: list[Crl] | None = None
) -> tuple[Outcome, list[str]]:
    return add_crl_files([(filename, data)], actor, source_address=source_address, added=added)


def _add_one(crl, actor, filename, delegated, outcome, refused, source_address, source_url="") -> Crl | None:
    label = f"{filename}: " if filename else ""
    try:
        added = add_crl(crl, actor, delegated=delegated, source_address=source_address, source_url=source_url)
    except FlowError as exc:
        refused.append(f"{label}{exc}")
        return None
    outcome.changes.append(Change(f"{label}{added.message}", changed=added.crl is not None))
    return added.crl


def add_crl(
    crl: x509.CertificateRevocationList, actor, *, delegated=(), source_address=None, source_url: str = ""
) -> Added:
    issuer = display_name(crl.issuer)
    try:
        inspected = rev.inspect(crl)
    except rev.CrlError as exc:
        raise FlowError(f"The CRL of '{issuer}' was refused: {exc}") from None
    known = _known_cas()
    try:
        signer_cert = rev.find_signer(crl, [c.to_x509() for c in known], delegated)
    except rev.CrlError as exc:
        raise FlowError(f"The CRL of '{issuer}' was refused: {exc}") from None
    signer = Certificate.objects.store(signer_cert)
    der = crl.public_bytes(serialization.Encoding.DER)
    sha256 = hashlib.sha256(der).hexdigest()
    existing = Crl.objects.filter(sha256=sha256).first()
    if existing is not None:
        return Added(None, f"This CRL of '{issuer}' is stored already (id {existing.pk}).")
    kind = "delta CRL" if inspected.is_delta else "CRL"
    # Loaded in three steps, so that SQLite's one writer (sign-on's sessions and audit events)
    # never waits for more than one batch of entries: the row is reserved, not yet counting; the
    # entries are written batch by batch; then one short transaction makes it count and retires
    # what it replaces, whose entries are then deleted batch by batch. Sign-on sees the old CRL
    # or the new one, never half of one.
    discard_abandoned()
    busy = f"This CRL of '{issuer}' is being added right now, by another request or process."
    try:
        with transaction.atomic():
            _older(crl, inspected, kind, issuer)
            if Crl.every.filter(sha256=sha256).exists():
                raise FlowError(busy)
            postgres = connection.vendor == "postgresql"
            row = Crl.every.create(
                der=b"" if postgres else der,
                sha256=sha256,
                issuer=crl.issuer.rfc4514_string(),
                issuer_display=issuer[:500],
                issuer_key=rev.name_key(crl.issuer),
                signer=signer,
                number=str(inspected.number) if inspected.number is not None else "",
                delta_base=str(inspected.delta_base) if inspected.delta_base is not None else "",
                this_update=crl.last_update_utc,
                next_update=crl.next_update_utc,
                scope=inspected.scope.as_dict(),
                source_url=source_url[:2000],
                complete=False,
                **Crl.by(actor),
            )
            if postgres:
                _store_der(row.pk, der)
                row.der = der
    except IntegrityError:  # the same file, reserved by another process since the check above
        raise FlowError(busy) from None
    try:
        builder = serial_filter.Builder(len(crl))
        try:
            count = _store_entries(row.pk, inspected, builder)
        except rev.CrlError as exc:
            raise FlowError(f"The {kind} of '{issuer}' was refused: {exc}") from None
        except (ValueError, OverflowError) as exc:
            raise FlowError(f"The {kind} of '{issuer}' was refused: an entry cannot be read ({exc}).") from None
        with transaction.atomic():
            TrustSettings.bump()  # first: its row lock orders two loads that finish together
            # Again: another CRL of the same CA and scope may have been added meanwhile.
            replaced = [r.pk for r in _older(crl, inspected, kind, issuer)]
            # The filter of every serial stored, with the row made to count.
            Crl.every.filter(pk=row.pk).update(entry_count=count, serial_filter=builder.dump(), complete=True)
            if replaced:
                Crl.every.filter(pk__in=replaced).update(complete=False)
            until = f"{crl.next_update_utc:%Y-%m-%d %H:%M} UTC" if crl.next_update_utc else "no next update given"
            message = (
                f"Added the {kind} of '{issuer}' (id {row.pk}, {count} revoked serial{'s' if count != 1 else ''}, "
                f"this update {crl.last_update_utc:%Y-%m-%d %H:%M} UTC, next update {until}), signed by "
                f"'{signer.subject_display}' ({signer.thumbprint})."
            )
            if replaced:
                message += " It replaces the older one (id " + ", ".join(str(i) for i in replaced) + ")."
            AuditEvent.objects.record(
                actor,
                "crl.add",
                message,
                source_address=source_address,
                detail={
                    "id": row.pk,
                    "issuer": row.issuer,
                    "kind": row.kind,
                    "number": row.number or None,
                    "this_update": row.this_update.isoformat(),
                    "next_update": row.next_update.isoformat() if row.next_update else None,
                    "entries": count,
                    "signer": signer.thumbprint,
                    "replaced": replaced,
                },
            )
    except BaseException:
        _discard(row.pk)
        raise
    for old in replaced:
        _discard(old)
    row.entry_count, row.complete = count, True
    return Added(row, message)


def _older(crl, inspected: rev.Inspected, kind: str, issuer: str) -> list[Crl]:
    """The stored CRLs of the same CA, kind and scope, which this one replaces; ``FlowError`` when
    one of them is newer (an older CRL could hide a revocation)."""
    scope_key = inspected.scope.key
    older = []
    for row in Crl.objects.filter(issuer_key=rev.name_key(crl.issuer)).defer("der", "serial_filter"):
        if row.is_delta != inspected.is_delta or rev.Scope.from_dict(row.scope).key != scope_key:
            continue
        if _newer(row, inspected):
            raise FlowError(
                f"The {kind} of '{issuer}' was refused: a newer one is stored already (id {row.pk}, "
                f"this update {row.this_update:%Y-%m-%d %H:%M} UTC). An older CRL could hide a revocation."
            )
        older.append(row)
    return older


def _discard(crl_id: int) -> None:
    """Delete a CRL that does not count (one whose load failed, or one replaced or removed): its
    entries batch by batch on SQLite (each batch a short write), then its row. A failure here
    leaves it for ``discard_abandoned``; it never hides the error that brought it here."""
    table, q = RevokedSerial._meta.db_table, connection.ops.quote_name
    try:
        if connection.vendor == "sqlite":
            sql = (
                f"DELETE FROM {q(table)} WHERE {q('id')} IN "  # noqa: S608 - quoted names only
                f"(SELECT {q('id')} FROM {q(table)} WHERE {q('crl_id')} = %s LIMIT {SQLITE_WRITE_ROWS})"
            )
            while True:
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute(sql, [crl_id])
                    if cursor.rowcount < SQLITE_WRITE_ROWS:
                        break
        with transaction.atomic():
            RevokedSerial.objects.filter(crl_id=crl_id).delete()
            Crl.every.filter(pk=crl_id, complete=False).only("id").delete()
    except DatabaseError:
        logger.warning("CRL id %s does not count but could not be deleted yet; it will be later.", crl_id)


# A CRL that does not count for this long was abandoned (its load or its deletion stopped).
ABANDONED_AFTER = timedelta(hours=6)


def discard_abandoned(now: datetime | None = None) -> None:
    """Delete what an interrupted load or deletion left behind (for cron, and before each load)."""
    since = (now or timezone.now()) - ABANDONED_AFTER
    for crl_id in Crl.every.filter(complete=False, added_at__lt=since).values_list("id", flat=True):
        _discard(crl_id)


def _newer(row: Crl, inspected: rev.Inspected) -> bool:
    """Whether the stored ``row`` is newer than the CRL being added."""
    if row.number and inspected.number is not None:
        return int(row.number) > inspected.number
    return row.this_update > inspected.crl.last_update_utc


def _store_der(crl_id: int, der: bytes) -> None:
    """PostgreSQL: the DER sent as a binary parameter. Django binds parameters on the client, which
    writes a CRL of 30 MB into the statement as hex text, several copies over."""
    import psycopg

    table, q = Crl._meta.db_table, connection.ops.quote_name
    sql = f"UPDATE {q(table)} SET {q('der')} = %b WHERE {q('id')} = %s"  # noqa: S608 - quoted names only
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, [der, crl_id])


def _store_entries(crl_id: int, inspected: rev.Inspected, builder: serial_filter.Builder) -> int:
    """Store the entries, streamed in batches so that memory stays bounded whatever the CRL's size:
    on PostgreSQL by COPY, elsewhere by one statement per batch (a million in seconds). Every
    serial stored is added to ``builder``'s filter."""
    table = connection.ops.quote_name(RevokedSerial._meta.db_table)
    columns = ", ".join(
        connection.ops.quote_name(c) for c in ("crl_id", "serial", "issuer_key", "revoked_at", "reason")
    )
    if connection.vendor == "postgresql":
        return _copy_entries(crl_id, inspected, table, columns, builder)
    sql = f"INSERT INTO {table} ({columns}) VALUES (%s, %s, %s, %s, %s)"  # noqa: S608 - quoted names only
    counted = [0]
    rows = _adapted_rows(crl_id, inspected, counted, builder)
    with connection.cursor() as cursor:
        # A CRL's serials are random, so each lands anywhere in the lookup index: with SQLite's
        # default page cache (2 MB) a million of them keep re-reading index pages (31 s instead of
        # 10 s in bench/revocation.py). A larger cache for this load only, then the default again.
        cursor.execute("PRAGMA cache_size")
        (previous,) = cursor.fetchone()
        cursor.execute(f"PRAGMA cache_size = -{SQLITE_LOAD_CACHE_KIB}")
        try:
            while batch := list(islice(rows, SQLITE_WRITE_ROWS)):
                with transaction.atomic():  # each batch its own short write
                    cursor.executemany(sql, batch)
        finally:
            cursor.execute(f"PRAGMA cache_size = {int(previous)}")
    return counted[0]


def _adapted_rows(crl_id: int, inspected: rev.Inspected, counted: list[int], builder: serial_filter.Builder):
    """The entries as rows of ``RevokedSerial`` with their dates adapted for the database (each
    distinct date once: they repeat); ``counted[0]`` counts them."""
    adapt = connection.ops.adapt_datetimefield_value
    add = builder.add
    adapted: dict = {}
    for count, (serial, issuer_key, revoked_at, reason) in enumerate(inspected.rows(), 1):
        if len(serial) > 130:
            raise ValueError(f"serial {serial[:20]}... is longer than 64 octets")
        when = adapted.get(revoked_at)
        if when is None:
            if len(adapted) > BATCH:
                adapted.clear()
            when = adapted[revoked_at] = adapt(revoked_at)
        counted[0] = count
        add(serial)
        yield crl_id, serial, issuer_key, when, reason


def _copy_entries(
    crl_id: int, inspected: rev.Inspected, table: str, columns: str, builder: serial_filter.Builder
) -> int:
    """PostgreSQL: one COPY of every entry, written row by row as the CRL is read, in a transaction
    of its own (PostgreSQL has no database-wide write lock: other writers never wait for it)."""
    count = 0
    sql = f"COPY {table} ({columns}) FROM STDIN"  # noqa: S608 - quoted names only
    with transaction.atomic(), connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        write, add = copy.write_row, builder.add
        for serial, issuer_key, revoked_at, reason in inspected.rows():
            if len(serial) > 130:
                raise ValueError(f"serial {serial[:20]}... is longer than 64 octets")
            write((crl_id, serial, issuer_key, revoked_at, reason))
            add(serial)
            count += 1
    return count


def build_missing_filters() -> list[tuple[int, int]]:
    """Give a serial filter to every stored CRL that has no readable one (one stored before filters
    existed, or whose filter is of another version): (CRL id, serials) for each. Until then every
    lookup in such a CRL queries the database. For ``certs crls fetch`` (the upgrade's migration
    0012 did the same once), never on the sign-on path."""
    built = []
    for row in Crl.objects.only("id", "entry_count", "serial_filter").order_by("id"):
        if serial_filter.load(row.serial_filter) is not None:
            continue
        serials = RevokedSerial.objects.filter(crl_id=row.pk).values_list("serial", flat=True)
        builder = serial_filter.Builder(row.entry_count)
        count = 0
        for serial in serials.iterator(chunk_size=BATCH):
            builder.add(serial)
            count += 1
        # A filter that missed a serial would let that certificate through: stored only when every
        # entry was read (a CRL's entries never change; a CRL removed meanwhile updates nothing).
        if count == row.entry_count and Crl.objects.filter(pk=row.pk).update(serial_filter=builder.dump()):
            built.append((row.pk, count))
    return built


def remove_crl(crl_id: int, actor, *, source_address=None) -> str:
    with transaction.atomic():
        row = Crl.objects.defer("der", "serial_filter").filter(pk=crl_id).first()
        if row is None:
            raise FlowError(f"There is no CRL with id {crl_id}. See manage.py certs crls list.")
        message = f"Removed the {'delta CRL' if row.is_delta else 'CRL'} of '{row.issuer_display}' (id {row.pk})."
        # It stops counting at once; its entries go batch by batch after.
        Crl.every.filter(pk=row.pk).update(complete=False)
        AuditEvent.objects.record(
            actor,
            "crl.remove",
            message,
            source_address=source_address,
            detail={"id": crl_id, "issuer": row.issuer, "kind": row.kind},
        )
        TrustSettings.bump()
    _discard(crl_id)
    return message


def freshness(row: Crl, now: datetime | None = None) -> str:
    """'fresh', 'soon stale' (next update within a day), 'stale', or 'no next update'."""
    now = now or timezone.now()
    if row.next_update is None:
        return "no next update"
    if row.next_update < now:
        return "stale"
    if row.next_update - now <= SOON_STALE:
        return "soon stale"
    return "fresh"


def crl_as_dict(row: Crl, now: datetime | None = None) -> dict:
    now = now or timezone.now()
    return {
        "id": row.pk,
        "issuer": row.issuer,
        "kind": row.kind,
        "number": row.number or None,
        "delta_base": row.delta_base or None,
        "this_update": row.this_update.isoformat(),
        "next_update": row.next_update.isoformat() if row.next_update else None,
        "age_hours": round((now - row.this_update).total_seconds() / 3600, 1),
        "freshness": freshness(row, now),
        "entries": row.entry_count,
        "signer": row.signer.thumbprint,
        "added_by": row.added_by_name or None,
        "added_at": row.added_at.isoformat(),
    }


# --- policies --------------------------------------------------------------------------------


def set_policy(
    actor,
    *,
    check: str,
    ca_thumbprint: str | None = None,
    when_unknown: str | None = None,
    grace_hours: int | None = None,
    source_address=None,
) -> Outcome:
    """Set the org default policy, or one CA's override (a CA in one of the stores)."""
    if check not in RevocationCheck.values:
        raise FlowError(f"--check must be one of {', '.join(RevocationCheck.values)}, not '{check}'.")
    if when_unknown is not None and when_unknown not in WhenUnknown.values:
        raise FlowError(f"--when-unknown must be refuse or allow, not '{when_unknown}'.")
    if grace_hours is not None and not 0 <= grace_hours <= rev.MAX_GRACE_HOURS:
        raise FlowError(f"--grace-hours must be from 0 to {rev.MAX_GRACE_HOURS} (a year).")
    ca = None
    if ca_thumbprint is not None:
        sha1 = parse_thumbprint(ca_thumbprint)
        entry = StoreEntry.objects.filter(certificate__sha1=sha1).select_related("certificate").first()
        if entry is None:
            raise FlowError(
                f"No CA with thumbprint {format_thumbprint(sha1)} is in the trusted root store, the intermediate "
                "pool or the approved CA list; a policy can be set only for one of those."
            )
        ca = entry.certificate
    with transaction.atomic():
        row, _ = RevocationPolicy.objects.get_or_create(ca_sha1=ca.sha1 if ca else "", defaults={"ca": ca})
        if when_unknown is not None:
            row.when_unknown = when_unknown
        if grace_hours is not None:
            row.grace_hours = grace_hours
        row.check_by = check
        for name, value in RevocationPolicy.by(actor).items():
            setattr(row, name, value)
        row.added_at = timezone.now()
        row.save()
        whose = f"'{ca.subject_display}' ({ca.thumbprint})" if ca else "the org default"
        policy = _policy(row)
        message = f"Revocation policy for {whose}: {policy.describe()}."
        AuditEvent.objects.record(
            actor,
            "revocation.set",
            message,
            source_address=source_address,
            detail={
                "ca": ca.thumbprint if ca else None,
                "check": row.check_by,
                "when_unknown": row.when_unknown,
                "grace_hours": row.grace_hours,
            },
        )
        TrustSettings.bump()
    outcome = Outcome([Change(message)])
    if check == RevocationCheck.CRL and row.when_unknown == WhenUnknown.REFUSE:
        missing = _cas_without_crl([ca] if ca else _known_cas(), overridden_off=ca is None)
        if missing:
            outcome.warnings.append(
                "No CRL is stored for "
                + ", ".join(f"'{c.subject_display}'" for c in missing)
                + ": certificates they issued cannot connect until their CRL is added "
                "(manage.py certs crls add FILE)."
            )
    return outcome


def remove_policy(actor, ca_thumbprint: str, *, source_address=None) -> str:
    """Remove one CA's override: the CA follows the org default again."""
    sha1 = parse_thumbprint(ca_thumbprint)
    with transaction.atomic():
        row = RevocationPolicy.objects.select_related("ca").filter(ca_sha1=sha1).first()
        if row is None:
            raise FlowError(
                f"The CA with thumbprint {format_thumbprint(sha1)} has no revocation policy of its own; "
                "it follows the org default."
            )
        whose = f"'{row.ca.subject_display}' ({row.ca.thumbprint})" if row.ca else format_thumbprint(sha1)
        row.delete()
        message = (
            f"Removed the revocation policy for {whose}: it follows the org default ({default_policy().describe()})."
        )
        AuditEvent.objects.record(
            actor,
            "revocation.remove",
            message,
            source_address=source_address,
            detail={"ca": format_thumbprint(sha1)},
        )
        TrustSettings.bump()
    return message


def _cas_without_crl(cas, overridden_off: bool) -> list[Certificate]:
    off = set(
        RevocationPolicy.objects.filter(check_by=RevocationCheck.OFF)
        .exclude(ca_sha1="")
        .values_list("ca_sha1", flat=True)
    )
    issuers = set(Crl.objects.values_list("issuer", flat=True))
    return [c for c in cas if c.is_ca and c.subject not in issuers and not (overridden_off and c.sha1 in off)]


def policies_as_dict() -> dict:
    rows = list(RevocationPolicy.objects.select_related("ca"))
    default = next((r for r in rows if not r.ca_sha1), None)

    def one(row: RevocationPolicy | None) -> dict:
        policy = _policy(row) if row else rev.Policy()
        return {
            "check": policy.check,
            "when_unknown": policy.when_unknown,
            "grace_hours": policy.grace_hours,
            "set_by": (row.added_by_name or None) if row else None,
            "set_at": row.added_at.isoformat() if row else None,
        }

    return {
        "default": one(default),
        "overrides": [
            {
                "ca": r.ca.thumbprint if r.ca else format_thumbprint(r.ca_sha1),
                "subject": r.ca.subject if r.ca else None,
                **one(r),
            }
            for r in rows
            if r.ca_sha1
        ],
    }


# --- export for the front proxy --------------------------------------------------------------


def export_crls(now: datetime | None = None) -> tuple[str, int, list[str]]:
    """Every stored complete CRL as one PEM file, for nginx's ``ssl_crl``: (the text, how many,
    warnings). nginx refuses every certificate whose CA has no CRL in that file once it is set,
    and every certificate of a CA whose CRL has expired; the warnings name both. Delta CRLs are
    left out: nginx does not apply them."""
    now = now or timezone.now()
    rows = list(Crl.objects.filter(delta_base="").order_by("issuer_display", "id"))
    parts = []
    for row in rows:
        pem = x509.load_der_x509_crl(bytes(row.der)).public_bytes(serialization.Encoding.PEM).decode()
        until = f"{row.next_update:%Y-%m-%d %H:%M} UTC" if row.next_update else "no next update"
        parts.append(
            f"# CRL of {pem_comment(row.issuer_display)}, number {row.number or '-'}, next update {until}\n{pem}"
        )
    warnings = []
    stale = [row for row in rows if row.next_update is not None and row.next_update < now]
    if stale:
        warnings.append(
            "Stale (past their next update), so nginx refuses every certificate their CA issued until a fresh "
            "one is added: " + ", ".join(f"'{row.issuer_display}' (id {row.pk})" for row in stale) + "."
        )
    issuers = {row.issuer for row in rows}
    missing = [c for c in _known_cas() if c.is_ca and c.subject not in issuers]
    if missing:
        warnings.append(
            "No CRL for " + ", ".join(f"'{c.subject_display}'" for c in missing) + ": once ssl_crl is set, nginx "
            "refuses every certificate whose path runs through a CA without a CRL in the file. Add their CRLs "
            "(manage.py certs crls add FILE) before using this file."
        )
    return "".join(parts), len(rows), warnings


# --- what the trust pages show -------------------------------------------------------------------


@dataclass
class CaCrl:
    """The newest complete CRL a CA issued, as the trust pages show it (``crl`` None: none stored)."""

    crl: Crl | None
    freshness: str  # 'none', 'fresh', 'soon stale', 'stale' or 'no next update'
    age_hours: float | None = None


def crl_status(certificates) -> dict[int, CaCrl]:
    """For each CA certificate (by its row's id), the freshness of its newest complete CRL."""
    now = timezone.now()
    newest: dict[str, Crl] = {}
    for row in Crl.objects.filter(delta_base="").defer("der", "serial_filter"):
        if row.issuer not in newest or row.this_update > newest[row.issuer].this_update:
            newest[row.issuer] = row
    found = {}
    for cert in certificates:
        row = newest.get(cert.subject)
        if row is None:
            found[cert.pk] = CaCrl(None, "none")
        else:
            found[cert.pk] = CaCrl(row, freshness(row, now), round((now - row.this_update).total_seconds() / 3600, 1))
    return found


# --- fetching from distribution points ---------------------------------------------------------

FETCH_TIMEOUT_SECONDS = 15
# The largest CRL the command line and cron take (a web upload takes the pages' smaller limit).
MAX_CRL_BYTES = 200 * 1024 * 1024
# How much lower than the app's the CPU priority of ``certs crls add`` and ``fetch`` is (nice).
BATCH_NICENESS = 10
FETCH_ACTOR = "CRL fetch"
FETCH_AT_ONCE = 4


@dataclass
class Fetched:
    url: str
    status: str  # 'added', 'unchanged', 'fresh', 'refused' or 'failed'
    message: str

    def as_dict(self) -> dict:
        return {"url": self.url, "status": self.status, "message": self.message}


def distribution_points() -> list[str]:
    """The http and https CRL distribution points named by certificates an admin put in the stores
    or on a profile. Certificates merely presented at sign-on are never read: their contents are
    the client's, and fetching what they name would let anyone make the server request any URL."""
    ids = set(StoreEntry.objects.values_list("certificate_id", flat=True))
    ids |= set(Credential.objects.exclude(certificate=None).values_list("certificate_id", flat=True))
    urls = set()
    for row in Certificate.objects.filter(id__in=ids).only("der").iterator():
        try:
            points = row.to_x509().extensions.get_extension_for_class(x509.CRLDistributionPoints).value
        except (x509.ExtensionNotFound, ValueError):
            continue
        for point in points:
            for name in point.full_name or ():
                if isinstance(name, x509.UniformResourceIdentifier) and name.value.lower().startswith(
                    ("http://", "https://")
                ):
                    urls.add(name.value)
    return sorted(urls)


class _HttpOnlyRedirects(HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if not newurl.lower().startswith(("http://", "https://")):
            raise URLError(f"a redirect to {newurl!r}, which is not http or https")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def yield_to_sign_on() -> None:
    """Lower this process's CPU priority by ``BATCH_NICENESS``: loading a large CRL is batch work,
    and on a busy machine sign-on in the app's processes should keep the processor. The
    database's own work for the load is not lowered; readers never wait for it (WAL on SQLite,
    MVCC on PostgreSQL). Only for a process of its own (the command line, cron): a web worker's
    priority would stay lowered for every request after."""
    try:
        os.nice(BATCH_NICENESS)
    except (OSError, AttributeError):  # not permitted, or not a POSIX system
        pass


def fetch_crls(actor=FETCH_ACTOR, now: datetime | None = None) -> list[Fetched]:
    """Fetch the CRL at every distribution point (see ``distribution_points``) whose stored CRL is
    past half of its life, or that has none, with a conditional GET; add what verifies. For cron:
    never on the sign-on path. Up to ``FETCH_AT_ONCE`` are downloaded at once (an address that
    does not answer costs its timeout once, not once per address after it); each is added by
    this thread as it arrives, and the results come in the order of the addresses."""
    now = now or timezone.now()
    urls = distribution_points()
    results: dict[str, list[Fetched]] = {}
    wanted = []
    for url in urls:
        stored = Crl.objects.filter(source_url=url).defer("der", "serial_filter").order_by("-this_update").first()
        if stored is not None and stored.next_update is not None:
            half = stored.this_update + (stored.next_update - stored.this_update) / 2
            if now < half:
                message = f"The stored CRL (id {stored.pk}) is fresh until {half:%Y-%m-%d %H:%M} UTC."
                results[url] = [Fetched(url, "fresh", message)]
                continue
        wanted.append((url, stored.this_update if stored is not None else None))
    if wanted:
        with ThreadPoolExecutor(min(FETCH_AT_ONCE, len(wanted)), thread_name_prefix="crl-fetch") as pool:
            downloads = {pool.submit(_download, url, since): url for url, since in wanted}
            for done in as_completed(downloads):
                url = downloads[done]
                data, failed = done.result()
                results[url] = [failed] if failed is not None else _add_fetched(url, data, actor)
    return [result for url in urls for result in results[url]]


def _download(url: str, since: datetime | None) -> tuple[bytes | None, Fetched | None]:
    """(the body, None), or (None, why not). Network only: no database here (another thread)."""
    request = Request(url, headers={"User-Agent": "mft-crl-fetch"})  # noqa: S310 - http(s) only, redirects too
    if since is not None:
        request.add_header("If-Modified-Since", http_date(since.timestamp()))
    try:
        with build_opener(_HttpOnlyRedirects).open(request, timeout=FETCH_TIMEOUT_SECONDS) as response:
            data = response.read(MAX_CRL_BYTES + 1)
    except HTTPError as exc:
        if exc.code == 304:
            return None, Fetched(url, "unchanged", "Not modified since the stored CRL.")
        return None, Fetched(url, "failed", f"The server answered HTTP {exc.code} ({exc.reason}).")
    except (URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return None, Fetched(url, "failed", f"It cannot be fetched ({reason}).")
    if len(data) > MAX_CRL_BYTES:
        return None, Fetched(url, "failed", f"It is larger than {MAX_CRL_BYTES // (1024 * 1024)} MB.")
    return data, None


def _add_fetched(url: str, data: bytes, actor) -> list[Fetched]:
    try:
        outcome, refused = add_crl_files([(url, data)], actor, source_url=url)
    except FlowError as exc:
        return [Fetched(url, "refused", str(exc))]
    found = [Fetched(url, "refused", message) for message in refused]
    found += [Fetched(url, "added" if c.changed else "unchanged", c.message) for c in outcome.changes]
    return found


def needing_attention(now: datetime | None = None) -> list[tuple[Crl, str]]:
    """Stored CRLs that are stale or go stale within a day, with which, for the dashboard."""
    now = now or timezone.now()
    found = []
    for row in Crl.objects.defer("der", "serial_filter").order_by("next_update"):
        state = freshness(row, now)
        if state in ("stale", "soon stale"):
            found.append((row, state))
    return found
