"""Use cases: one function per thing an administrator or the sign-on engine does.

Pages, management commands and sign-on all call these, so none of them holds a rule of
its own. Each function that changes something records an audit event and returns what
it changed, so the caller can say so.

``actor`` is the User who acts, or a string naming who acts when no user does
("command line (root)").
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field

import cachetools
from cryptography import x509
from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from audit.models import AuditEvent
from users.models import Interface, SignOnMode, User

from . import issuing, trust
from .models import (
    Certificate,
    Credential,
    CredentialKind,
    OrgCA,
    Store,
    StoreEntry,
    TankEntry,
    TankKind,
    TrustSettings,
)
from .x509 import (
    directly_issued_by,
    display_name,
    format_thumbprint,
    is_ca,
    load_certificates,
    name_key,
    parse_thumbprint,
    printable,
    sha1_thumbprint,
    sha256_fingerprint,
    single_common_name,
)


class FlowError(Exception):
    """An action cannot be done; the message says why, for a person."""


def _actor_fields(actor) -> dict:
    return {
        "added_by": actor if isinstance(actor, User) else None,
        "added_by_name": str(actor)[:200] if actor is not None else "",
    }


def _name(cert) -> str:
    return display_name(cert.subject)


# --- the trust configuration and verdicts -----------------------------------------------------

_lock = threading.Lock()
_config: tuple[int, trust.TrustConfig] | None = None
_connections: cachetools.TLRUCache | None = None


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
    )
    with _lock:
        _config = (generation, config)
    return _config


def _connection_cache() -> cachetools.TLRUCache:
    global _connections
    if _connections is None:
        _connections = cachetools.TLRUCache(maxsize=20_000, ttu=_connection_expiry)
    return _connections


def _connection_expiry(key, connection: trust.Connection, now: float) -> float:
    """Reuse a verdict for a short while, and never past the first expiry on its path."""
    lifetime = float(settings.MFT_VERDICT_CACHE_SECONDS)
    if connection.ok:
        first_expiry = min(c.not_valid_after_utc for c in connection.path)
        lifetime = min(lifetime, (first_expiry - timezone.now()).total_seconds())
    return now + max(lifetime, 0.0)


def clear_caches() -> None:
    global _config, _connections
    with _lock:
        _config = None
        _connections = None


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
    with _lock:
        cache[key] = connection
    return connection


def candidates_for(cert, username: str | None = None) -> tuple[int, trust.TrustConfig, dict[str, User]]:
    """The trust configuration, and the users a certificate could concern, keyed by username.

    With a username, that user alone (or nobody). Without, every user who has the
    certificate's thumbprint or CN on their profile, and, when the Match Cert CN option is
    on, every user whose username or full name is the CN. Each user's ``matching_keys`` holds
    just the profile entries that concern this certificate. One query (two with Match CN).
    """
    sha1 = sha1_thumbprint(cert)
    # A CN that no rule may match (none, several, blank, control characters) is not looked up.
    cn = None if trust.cn_problem(cert) else single_common_name(cert)
    generation, match_cn, rows = Credential.objects.candidates(
        sha1, cn, name_key(username) if username is not None else None
    )
    generation, config = _current_config((generation, match_cn))
    users: dict[int, User] = {}
    for row in rows:
        user = users.setdefault(row.pk, row)
        if not hasattr(user, "matching_keys"):
            user.matching_keys = (set(), set())
        if row.matched_kind is not None:
            user.matching_keys[0 if row.matched_kind == CredentialKind.THUMBPRINT else 1].add(row.matched_key)
    if username is None and config.match_cn and cn:
        key = name_key(cn)
        for user in User.objects.filter(Q(username_key=key) | Q(full_name_key=key)):
            users.setdefault(user.pk, user)
    for user in users.values():
        if not hasattr(user, "matching_keys"):
            user.matching_keys = (set(), set())
    return generation, config, {u.username: u for u in users.values()}


def profile_of(user: User) -> trust.Profile:
    thumbprints, cns = getattr(user, "matching_keys", (set(), set()))
    return trust.Profile(
        username=user.username,
        full_name=user.full_name,
        is_active=user.is_active,
        thumbprints=frozenset(thumbprints),
        cns=frozenset(cns),
    )


def judge(cert, chain=(), username: str | None = None, at: dt.datetime | None = None) -> trust.Verdict:
    """The verdict for a presented certificate, exactly as sign-on would reach it."""
    return _judge(cert, chain, username, at)[0]


def _judge(cert, chain, username, at=None) -> tuple[trust.Verdict, dict[str, User]]:
    generation, config, users = candidates_for(cert, username)
    chain = tuple(chain)
    connection = connection_for(cert, chain, generation, config, at)
    profiles = [profile_of(u) for u in users.values()]
    verdict = trust.evaluate(
        cert, chain, config, profiles, at or timezone.now(), username=username, connection=connection
    )
    return verdict, users


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
        },
        "authenticate": {
            "ok": auth.ok,
            "user": auth.user,
            "rule": auth.rule,
            "reasons": list(auth.reasons),
        },
    }


# --- the org-level stores ---------------------------------------------------------------------


@dataclass
class StoreChange:
    certificate: Certificate
    changed: bool
    message: str
    warnings: list[str] = field(default_factory=list)


def add_to_store(store: str, certs: list[x509.Certificate], actor, source_address=None) -> list[StoreChange]:
    """Install certificates in the root store, or add them to the intermediate pool or the
    approved-CA list. All or nothing: one unsuitable certificate changes nothing."""
    phrase = Store(store).phrase
    if not certs:
        raise FlowError("No certificates were given.")
    if store in (Store.INTERMEDIATE, Store.APPROVED):
        for cert in certs:
            if not is_ca(cert):
                raise FlowError(
                    f"'{_name(cert)}' is not a CA certificate (its basic constraints do not mark "
                    f"it as a CA), so it cannot be added to {phrase}. Nothing was "
                    "changed."
                )
    changes = []
    now = timezone.now()
    with transaction.atomic():
        for cert in certs:
            row = Certificate.objects.store(cert)
            warnings = []
            if row.not_after <= now:
                warnings.append(f"'{row.subject_display}' expired on {row.not_after:%Y-%m-%d}.")
            if store == Store.ROOT and not row.is_ca:
                warnings.append(
                    f"'{row.subject_display}' is not a CA (no basic constraints marking it as one): "
                    "installing it trusts this one certificate itself, nothing it might sign."
                )
            _, created = StoreEntry.objects.get_or_create(store=store, certificate=row, defaults=_actor_fields(actor))
            if created:
                message = f"Added '{row.subject_display}' ({row.thumbprint}) to {phrase}."
                AuditEvent.objects.record(
                    actor,
                    f"{store}.add",
                    message,
                    source_address=source_address,
                    detail={"thumbprint": row.thumbprint, "subject": row.subject},
                )
            else:
                message = f"'{row.subject_display}' ({row.thumbprint}) is already in {phrase}."
            changes.append(StoreChange(row, created, message, warnings))
        if any(c.changed for c in changes):
            TrustSettings.bump()
    return changes


def remove_from_store(store: str, thumbprint: str, actor, source_address=None) -> str:
    phrase = Store(store).phrase
    sha1 = parse_thumbprint(thumbprint)
    with transaction.atomic():
        entry = StoreEntry.objects.filter(store=store, certificate__sha1=sha1).select_related("certificate").first()
        if entry is None:
            raise FlowError(f"No certificate with thumbprint {format_thumbprint(sha1)} is in {phrase}.")
        row = entry.certificate
        entry.delete()
        message = f"Removed '{row.subject_display}' ({row.thumbprint}) from {phrase}."
        AuditEvent.objects.record(
            actor,
            f"{store}.remove",
            message,
            source_address=source_address,
            detail={"thumbprint": row.thumbprint, "subject": row.subject},
        )
        TrustSettings.bump()
    return message


def set_match_cn(on: bool, actor, source_address=None) -> str:
    with transaction.atomic():
        row = TrustSettings.get()
        state = "on" if on else "off"
        if row.match_cn == on:
            return f"Match Cert CN to Username/Full Name is already {state}."
        TrustSettings.objects.filter(pk=row.pk).update(match_cn=on)
        TrustSettings.bump()
        message = f"Turned Match Cert CN to Username/Full Name {state}."
        AuditEvent.objects.record(actor, "match_cn.set", message, source_address=source_address, detail={"on": on})
    return message


def export_roots() -> tuple[str, int]:
    """The trusted root store as one PEM bundle, for the front proxy's client CA file.

    Each certificate is preceded by a comment naming it. The bundle is read back before it
    is returned: it must hold exactly the store's certificates, so that nothing in a
    certificate's name can smuggle another certificate into the proxy's trust.
    """
    rows = [entry.certificate for entry in StoreEntry.objects.in_store(Store.ROOT).order_by("id")]
    parts = [
        f"# {printable(row.subject_display)}\n# Thumbprint {row.thumbprint}, valid until {row.not_after:%Y-%m-%d}\n"
        f"{row.pem}"
        for row in rows
    ]
    bundle = "".join(parts)
    read_back = [sha256_fingerprint(c) for c in load_certificates(bundle.encode())] if rows else []
    if read_back != [row.sha256 for row in rows]:
        raise FlowError("The root store could not be exported faithfully; nothing was written.")
    return bundle, len(rows)


# --- user profiles ----------------------------------------------------------------------------


def _add_credential(user, kind, value, actor, *, certificate=None, source="manual", source_address=None):
    key = value if kind == CredentialKind.THUMBPRINT else name_key(value)
    existing = Credential.objects.filter(user=user, kind=kind, key=key).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            credential = _create_credential(user, kind, value, key, actor, certificate, source, source_address)
    except IntegrityError:  # added at the same moment by another request
        return Credential.objects.get(user=user, kind=kind, key=key), False
    return credential, True


def _create_credential(user, kind, value, key, actor, certificate, source, source_address) -> Credential:
    with transaction.atomic():
        credential = Credential.objects.create(
            user=user, kind=kind, value=value, certificate=certificate, source=source, **_actor_fields(actor)
        )
        # What is accepted is no longer waiting in the holding tank.
        TankEntry.objects.filter(user=user, kind=kind, key=key).delete()
        if kind == CredentialKind.THUMBPRINT:
            TankEntry.objects.filter(user__isnull=True, kind=TankKind.CERTIFICATE, key=key).delete()
        what = "thumbprint" if kind == CredentialKind.THUMBPRINT else "CN"
        AuditEvent.objects.record(
            actor,
            "credential.add",
            f"Added {what} {credential.shown_value} to {user.username}'s profile.",
            target=user,
            source_address=source_address,
            detail={"kind": kind, "value": credential.shown_value, "source": source},
        )
    return credential


def add_thumbprint(user, thumbprint: str, actor, *, certificate=None, source="manual", source_address=None):
    """Assign a thumbprint to the user's profile. Returns (credential, added)."""
    sha1 = parse_thumbprint(thumbprint)
    if certificate is None:
        certificate = Certificate.objects.filter(sha1=sha1).first()
    return _add_credential(
        user,
        CredentialKind.THUMBPRINT,
        sha1,
        actor,
        certificate=certificate,
        source=source,
        source_address=source_address,
    )


def clean_cn(cn: str) -> str:
    cn = " ".join((cn or "").split())
    if not cn:
        raise FlowError("Enter a CN.")
    if len(cn) > trust.MAX_CN_LENGTH:
        raise FlowError(f"A CN has at most {trust.MAX_CN_LENGTH} characters; this one has {len(cn)}.")
    if printable(cn) != cn:
        raise FlowError("A CN cannot contain control characters.")
    return cn


def add_cn(user, cn: str, actor, *, certificate=None, source="manual", source_address=None):
    """Assign a CN to the user's profile (authenticates only with an approved CA)."""
    return _add_credential(
        user,
        CredentialKind.CN,
        clean_cn(cn),
        actor,
        certificate=certificate,
        source=source,
        source_address=source_address,
    )


def remove_credential(user, credential_id: int, actor, source_address=None) -> str:
    credential = Credential.objects.filter(user=user, pk=credential_id).first()
    if credential is None:
        raise FlowError(f"{user.username}'s profile has no certificate entry with id {credential_id}.")
    what = "thumbprint" if credential.kind == CredentialKind.THUMBPRINT else "CN"
    message = f"Removed {what} {credential.shown_value} from {user.username}'s profile."
    with transaction.atomic():
        credential.delete()
        AuditEvent.objects.record(
            actor,
            "credential.remove",
            message,
            target=user,
            source_address=source_address,
            detail={"kind": credential.kind, "value": credential.shown_value},
        )
    return message


@dataclass
class ImportedCertificate:
    """What importing one certificate into a profile did, and what the admin should know."""

    certificate: Certificate
    thumbprint_added: bool
    cn_added: bool
    self_signed: bool
    issuer_approved: bool
    notes: list[str] = field(default_factory=list)


def import_to_profile(user, certs: list[x509.Certificate], actor, source_address=None):
    """Record certificates from a file on the user's profile.

    Each end-entity certificate is recorded by thumbprint, and by CN as well when its
    issuing CA is approved. CA certificates in the same file (a chain) are not put on the
    profile. Returns (imported, skipped_ca_names).
    """
    user_certs = [c for c in certs if not is_ca(c)] or certs[:1]
    skipped = [_name(c) for c in certs if c not in user_certs]
    config = trust_config()
    chain = [c for c in certs if c not in user_certs]
    results = []
    with transaction.atomic():
        for cert in user_certs:
            verdict = judge(cert, chain, username=user.username)
            row = Certificate.objects.store(cert)
            _, thumb_added = add_thumbprint(
                user, row.sha1, actor, certificate=row, source="import", source_address=source_address
            )
            notes = []
            if not thumb_added:
                notes.append(f"Thumbprint {row.thumbprint} was already on the profile.")
            others = (
                Credential.objects.filter(kind=CredentialKind.THUMBPRINT, key=row.sha1)
                .exclude(user=user)
                .select_related("user")
            )
            for other in others[:5]:
                notes.append(f"This thumbprint is also on {other.user.username}'s profile.")
            cn = None if trust.cn_problem(cert) else single_common_name(cert)
            cn_added = False
            approval = verdict.approval
            if row.self_signed:
                if not any(sha1_thumbprint(r) == row.sha1 for r in config.roots):
                    notes.append(
                        "The certificate is self-signed: it can connect only once it is "
                        "installed in the trusted root store itself."
                    )
            elif approval.approved and cn:
                _, cn_added = add_cn(user, cn, actor, certificate=row, source="import", source_address=source_address)
                if not cn_added:
                    notes.append(f"CN '{cn}' was already on the profile.")
            elif cn:
                notes.append(
                    f"Recorded by thumbprint only: {approval.reason}. Approve that CA to let "
                    f"the CN '{cn}' authenticate as well."
                )
            if not verdict.connection.ok:
                notes.append(f"It cannot connect yet: {verdict.connection.reason}")
            results.append(ImportedCertificate(row, thumb_added, cn_added, row.self_signed, approval.approved, notes))
    return results, skipped


# --- the holding tank -------------------------------------------------------------------------


def record_presentation(
    verdict: trust.Verdict, cert, username: str | None, interface: str, source_address: str | None
) -> list[TankEntry]:
    """Put a presented certificate that connected but did not authenticate into a tank.

    With a known username: two entries in that user's tank, one for the thumbprint and one
    for the CN. With no username (or an unknown one): one entry in the org tank. A repeat
    updates the entry (last seen, attempts). Certificates that cannot connect never reach
    the tank; neither do ones that authenticate, or ones held back for another reason
    (an inactive user, several users matching).
    """
    if not verdict.connection.ok or verdict.authentication.ok:
        return []
    decisions = verdict.authentication.decisions
    if any(d.rule is not None for d in decisions):
        return []
    row = Certificate.objects.store(cert)
    user = User.objects.find(username) if username else None
    if user is None:
        return [_tank(None, TankKind.CERTIFICATE, row.sha1, row, interface, source_address)]
    entries = [_tank(user, TankKind.THUMBPRINT, row.sha1, row, interface, source_address)]
    if not trust.cn_problem(cert):
        entries.append(_tank(user, TankKind.CN, single_common_name(cert), row, interface, source_address))
    return [entry for entry in entries if entry is not None]


def _tank(user, kind, value, row, interface, source_address) -> TankEntry:
    key = name_key(value) if kind == TankKind.CN else value
    lookup = TankEntry.objects.filter(user=user, kind=kind, key=key)
    changes = dict(
        last_seen=timezone.now(),
        attempts=F("attempts") + 1,
        interface=interface,
        source_address=source_address,
        certificate=row,
    )
    if not lookup.update(**changes):
        try:
            with transaction.atomic():
                return TankEntry.objects.create(
                    user=user,
                    kind=kind,
                    value=value,
                    certificate=row,
                    interface=interface,
                    source_address=source_address,
                )
        except IntegrityError:  # a concurrent attempt created it first
            lookup.update(**changes)
    return lookup.first()  # None if an administrator accepted it in the meantime


def accept_tank_entry(entry_id: int, actor, *, user=None, as_kind: str | None = None, source_address=None) -> str:
    """Accept a holding-tank entry into a profile.

    A user's entry goes to that user's profile as what it is (thumbprint or CN). An org
    entry needs a ``user`` and is assigned by thumbprint unless ``as_kind`` is "cn".
    """
    entry = TankEntry.objects.select_related("user", "certificate").filter(pk=entry_id).first()
    if entry is None:
        raise FlowError(f"There is no holding-tank entry with id {entry_id}.")
    if entry.user_id is not None:
        if user is not None and user.pk != entry.user_id:
            raise FlowError(
                f"Entry {entry_id} is in {entry.user.username}'s holding tank; it can only be "
                f"accepted for {entry.user.username}."
            )
        user, kind = entry.user, entry.kind
    else:
        if user is None:
            raise FlowError(f"Entry {entry_id} is in the org holding tank: choose the user to assign it to.")
        kind = as_kind or CredentialKind.THUMBPRINT
    with transaction.atomic():
        if kind == CredentialKind.CN:
            cert = entry.certificate.to_x509()
            problem = trust.cn_problem(cert)
            if problem:
                raise FlowError(f"It cannot be assigned by CN: {problem}. Assign it by thumbprint instead.")
            credential, added = add_cn(
                user,
                single_common_name(cert),
                actor,
                certificate=entry.certificate,
                source="holding tank",
                source_address=source_address,
            )
        else:
            credential, added = add_thumbprint(
                user,
                entry.certificate.sha1,
                actor,
                certificate=entry.certificate,
                source="holding tank",
                source_address=source_address,
            )
        TankEntry.objects.filter(pk=entry.pk).delete()
        what = "thumbprint" if credential.kind == CredentialKind.THUMBPRINT else "CN"
        if added:
            message = f"Accepted {what} {credential.shown_value} into {user.username}'s profile."
        else:
            message = (
                f"{what.capitalize()} {credential.shown_value} was already on {user.username}'s profile; "
                "removed the entry."
            )
        AuditEvent.objects.record(
            actor,
            "tank.accept",
            message,
            target=user,
            source_address=source_address,
            detail={"kind": credential.kind, "value": credential.shown_value, "entry": entry_id},
        )
    return message


def remove_tank_entry(entry_id: int, actor, source_address=None) -> str:
    entry = TankEntry.objects.select_related("user").filter(pk=entry_id).first()
    if entry is None:
        raise FlowError(f"There is no holding-tank entry with id {entry_id}.")
    owner = f"{entry.user.username}'s holding tank" if entry.user_id else "the org holding tank"
    message = f"Removed {entry.get_kind_display().lower()} {entry.shown_value} from {owner}."
    with transaction.atomic():
        entry.delete()
        AuditEvent.objects.record(
            actor,
            "tank.remove",
            message,
            target=entry.user,
            source_address=source_address,
            detail={"kind": entry.kind, "value": entry.shown_value},
        )
    return message


# --- the organisational CA and certificates it issues -----------------------------------------


def create_org_ca(cn: str, actor, *, key_type="ec-p256", days=10 * 365, rotate=False, source_address=None):
    """Create the organisational CA, install it as a trusted root and approve it.

    Returns (org_ca, messages). With an org CA in place already, ``rotate`` must be set;
    the earlier CA stays installed and approved so that what it issued keeps working.
    """
    _refuse_second_org_ca(rotate)
    cert, key = issuing.create_ca(cn, key_type, days)
    return _install_org_ca(cert, key, actor, "Created", source_address)


def import_org_ca(cert, key, actor, *, rotate=False, source_address=None):
    """Make an existing CA (certificate and key, e.g. from a PKCS#12 file) the org CA."""
    _refuse_second_org_ca(rotate)
    if cert.not_valid_after_utc <= timezone.now():
        raise FlowError(f"The CA certificate expired on {cert.not_valid_after_utc:%Y-%m-%d}.")
    return _install_org_ca(cert, key, actor, "Imported", source_address)


def _refuse_second_org_ca(rotate: bool) -> None:
    current = OrgCA.active()
    if current is not None and not rotate:
        raise FlowError(
            f"There is an org CA already ('{current.certificate.subject_display}'). Rotate it to make a new one."
        )


def _install_org_ca(cert, key, actor, verb: str, source_address):
    messages = []
    with transaction.atomic():
        current = OrgCA.objects.select_for_update().filter(is_active=True).select_related("certificate").first()
        row = Certificate.objects.store(cert)
        if current is not None:
            if current.certificate_id == row.pk:
                raise FlowError("That CA is the org CA already.")
            OrgCA.objects.filter(pk=current.pk).update(is_active=False)
            messages.append(
                f"The previous org CA '{current.certificate.subject_display}' no longer signs new "
                "certificates; it stays trusted so that certificates it issued keep working."
            )
        org_ca = OrgCA.objects.create(
            certificate=row,
            encrypted_key=issuing.encrypt_private_key(key, settings.KEY_ENCRYPTION_KEY),
            created_by=actor if isinstance(actor, User) else None,
            created_by_name=str(actor)[:200],
        )
        message = f"{verb} the org CA '{row.subject_display}' ({row.thumbprint}), valid until {row.not_after:%Y-%m-%d}."
        AuditEvent.objects.record(
            actor,
            "org_ca.create" if verb == "Created" else "org_ca.import",
            message,
            source_address=source_address,
            detail={"thumbprint": row.thumbprint, "subject": row.subject, "rotated": current is not None},
        )
        messages.insert(0, message)
        for store in (Store.ROOT, Store.APPROVED):
            messages.extend(c.message for c in add_to_store(store, [cert], actor, source_address))
    return org_ca, messages


def find_issuer(cert) -> Certificate | None:
    """A certificate the app knows whose key signed ``cert`` (and whose subject is its issuer)."""
    for row in Certificate.objects.filter(subject=cert.issuer.rfc4514_string(), is_ca=True)[:20]:
        if directly_issued_by(cert, row.to_x509()):
            return row
    return None


def _refuse_cn_of_another_user(user, cn: str) -> None:
    """A certificate the org CA signs must not carry a name that can sign someone else on."""
    key = name_key(cn)
    others = User.objects.exclude(pk=user.pk)
    namesake = others.filter(Q(username_key=key) | Q(full_name_key=key)).first()
    if namesake is not None:
        which = "username" if namesake.username_key == key else "full name"
        raise FlowError(
            f"The CN '{cn}' is the {which} of user '{namesake.username}': a certificate with it could sign "
            f"{namesake.username} on. Choose another CN."
        )
    holder = Credential.objects.filter(kind=CredentialKind.CN, key=key).exclude(user=user).select_related("user")
    holder = holder.first()
    if holder is not None:
        raise FlowError(
            f"The CN '{cn}' is on {holder.user.username}'s profile: a certificate with it could sign "
            f"{holder.user.username} on. Choose another CN."
        )


@dataclass
class IssuedCertificate:
    pkcs12: bytes
    credential: Credential
    certificate: Certificate


def issue_certificate(
    user,
    actor,
    *,
    password: str,
    cn: str | None = None,
    days: int = 365,
    key_type: str = "ec-p256",
    source_address=None,
) -> IssuedCertificate:
    """Create a certificate for the user, signed by the org CA, delivered as PKCS#12.

    The thumbprint lands on the user's profile; the private key exists only inside the
    returned PKCS#12, protected by ``password``, and is never stored.
    """
    org_ca = OrgCA.active()
    if org_ca is None:
        raise FlowError("There is no org CA yet: create one before issuing certificates.")
    if not password:
        raise FlowError("Give a password to protect the PKCS#12 file.")
    _refuse_cn_of_another_user(user, cn or user.username)
    ca_cert = org_ca.certificate.to_x509()
    ca_key = issuing.decrypt_private_key(org_ca.encrypted_key, settings.KEY_ENCRYPTION_KEY)
    cert, key = issuing.issue_client_certificate(ca_cert, ca_key, cn or user.username, key_type, days)
    bundle = issuing.pkcs12_bundle(cn or user.username, key, cert, [ca_cert], password)
    with transaction.atomic():
        row = Certificate.objects.store(cert)
        credential, _ = add_thumbprint(
            user, row.sha1, actor, certificate=row, source="issued", source_address=source_address
        )
        AuditEvent.objects.record(
            actor,
            "certificate.issue",
            f"Issued certificate '{row.subject_display}' ({row.thumbprint}) for {user.username}, "
            f"valid until {row.not_after:%Y-%m-%d}, signed by the org CA '{org_ca.certificate.subject_display}'.",
            target=user,
            source_address=source_address,
            detail={"thumbprint": row.thumbprint, "key_type": key_type, "days": days},
        )
    return IssuedCertificate(bundle, credential, row)


# --- signing on -------------------------------------------------------------------------------

METHOD_PASSWORD = "password"
METHOD_CERTIFICATE = "certificate"
METHOD_BOTH = "certificate+password"

# Which ways of signing on each mode allows.
ALLOWED_METHODS = {
    SignOnMode.PASSWORD: {METHOD_PASSWORD},
    SignOnMode.CERT_OR_PASSWORD: {METHOD_PASSWORD, METHOD_CERTIFICATE, METHOD_BOTH},
    SignOnMode.CERT: {METHOD_CERTIFICATE, METHOD_BOTH},
    SignOnMode.CERT_AND_PASSWORD: {METHOD_BOTH},
}


@dataclass
class SignOn:
    """The decision on one sign-on attempt, with every reason (for the audit log, never the user)."""

    user: User | None = None
    method: str | None = None
    rule: str | None = None
    reasons: list[str] = field(default_factory=list)
    verdict: trust.Verdict | None = None
    # The certificate authenticated this user, whose mode also wants a password.
    password_needed_for: User | None = None
    # The user the attempt was about (named, or found by the certificate), signed on or not.
    identified: User | None = None
    # What was decided on, for recording the decision.
    presented: object = None
    username: str | None = None
    interface: str = Interface.HTTPS
    source_address: str | None = None

    @property
    def ok(self) -> bool:
        return self.user is not None


def sign_on(
    presented,
    *,
    username: str | None = None,
    password: str | None = None,
    interface: str = Interface.HTTPS,
    source_address: str | None = None,
    record: bool = True,
) -> SignOn:
    """Decide a sign-on attempt by the user's mode for the interface, and record it.

    ``presented`` is what arrived over TLS (a ``proxy.Presented``). Without a username the
    certificate alone must identify the user (the sign-on a browser does by itself). With
    ``record`` (the default) the decision is recorded at once (see ``record_sign_on``);
    without, the caller records it, e.g. in the transaction that also starts the session.
    """
    decision = _decide(presented, username, password, interface)
    decision.presented, decision.username, decision.interface = presented, username, interface
    decision.source_address = source_address
    if record:
        record_sign_on(decision)
    return decision


def record_sign_on(decision: SignOn) -> None:
    """Audit a sign-on decision with its full reasons; a certificate that connects but does
    not authenticate goes to the holding tank."""
    presented, username, interface = decision.presented, decision.username, decision.interface
    if decision.verdict is not None and not decision.ok and decision.password_needed_for is None:
        record_presentation(decision.verdict, presented.cert, username, interface, decision.source_address)
    _audit_sign_on(decision, presented, username, interface, decision.source_address)


def _decide(presented, username, password, interface) -> SignOn:
    decision = SignOn()
    candidates = None
    if presented.cert is not None:
        decision.verdict, candidates = _judge(presented.cert, presented.chain, username)
        if presented.proxy_failure:
            # The proxy's failure is final; its success never is: the app judges for itself.
            failed = trust.Connection(False, f"The front proxy refused the certificate: {presented.proxy_failure}.", ())
            decision.verdict = trust.Verdict(failed, decision.verdict.approval, decision.verdict.authentication)
        decision.reasons.append(f"Certificate: {decision.verdict.category_text}.")
        decision.reasons.extend([decision.verdict.connection.reason] + list(decision.verdict.authentication.reasons))
    by_certificate = None
    if decision.verdict is not None and decision.verdict.category == trust.AUTHENTICATES:
        by_certificate = candidates.get(decision.verdict.authentication.user)
    if username:
        user = next(iter(candidates.values()), None) if candidates is not None else User.objects.find(username)
    else:
        user = by_certificate
    if user is None:
        if password:
            # Spend the time a real check takes, so that refusals do not tell which usernames exist.
            User().set_password(password)
        decision.reasons.append(f"There is no user '{username}'." if username else "No user was identified.")
        return decision
    decision.identified = user
    mode = user.sign_on_mode(interface)
    allowed = ALLOWED_METHODS[mode]
    cert_ok = by_certificate is not None and by_certificate.pk == user.pk
    password_ok = bool(password) and user.check_password(password)
    if password and not password_ok:
        decision.reasons.append("The password is wrong.")
        return decision
    if not user.is_active:
        decision.reasons.append(f"User '{user.username}' is inactive.")
        return decision
    if cert_ok and password_ok and METHOD_BOTH in allowed:
        method = METHOD_BOTH
    elif cert_ok and METHOD_CERTIFICATE in allowed:
        method = METHOD_CERTIFICATE
    elif password_ok and METHOD_PASSWORD in allowed:
        method = METHOD_PASSWORD
    else:
        label = Interface(interface).label
        if cert_ok and mode == SignOnMode.CERT_AND_PASSWORD:
            decision.password_needed_for = user
            decision.reasons.append(f"{user.username}'s {label} mode also requires the password.")
        elif cert_ok and mode == SignOnMode.PASSWORD:
            decision.reasons.append(f"{user.username}'s {label} mode is password only; certificates play no part.")
        elif password_ok:
            decision.reasons.append(f"{user.username}'s {label} mode ({mode}) requires a client certificate.")
        elif not password and not cert_ok:
            decision.reasons.append("Neither a certificate that authenticates the user nor a password was given.")
        return decision
    decision.user, decision.method = user, method
    decision.rule = decision.verdict.authentication.rule if method != METHOD_PASSWORD else None
    return decision


def still_signed_on(user, method: str, cert, chain, interface: str = Interface.HTTPS) -> str | None:
    """Why a session may no longer continue, or None if it may.

    A session signed on by certificate lasts only while the same certificate keeps
    authenticating the same user; any session ends when the user's mode stops allowing the
    way it was signed on.
    """
    if not user.is_active:
        return f"user '{user.username}' is inactive"
    if method not in ALLOWED_METHODS[user.sign_on_mode(interface)]:
        return f"{user.username}'s sign-on mode no longer allows signing on by {method}"
    if method == METHOD_PASSWORD:
        return None
    if cert is None:
        return "the certificate is no longer presented"
    verdict = judge(cert, chain, username=user.username)
    if verdict.category != trust.AUTHENTICATES:
        return "the certificate no longer authenticates the user: " + " ".join(verdict.authentication.reasons)
    return None


# At most this many distinct refusals a minute from one address get entries of their own.
REFUSALS_PER_MINUTE = 30


def _refusal_budget(source_address) -> bool:
    key = f"mft:refusals:{source_address}"
    cache.add(key, 0, 60)
    try:
        return cache.incr(key) <= REFUSALS_PER_MINUTE
    except ValueError:  # expired between add and incr
        return True


def _audit_sign_on(decision: SignOn, presented, username, interface, source_address) -> None:
    cert = presented.cert
    detail = {
        "interface": interface,
        "username_presented": username,
        "method": decision.method,
        "rule": decision.rule,
        "category": decision.verdict.category if decision.verdict else None,
        "thumbprint": format_thumbprint(sha1_thumbprint(cert)) if cert is not None else None,
        "sha256": sha256_fingerprint(cert) if cert is not None else None,
        "subject": printable(cert.subject.rfc4514_string()) if cert is not None else None,
        "chain": [sha256_fingerprint(c) for c in presented.chain],
        "reasons": decision.reasons,
    }
    label = Interface(interface).label
    if decision.ok:
        how = decision.method + (f" ({decision.rule})" if decision.rule else "")
        summary = f"{decision.user.username} signed on over {label} by {how}."
        action = "signon.success"
    else:
        who = f"'{username}'" if username else "an unnamed user"
        summary = f"Sign-on over {label} refused for {who}: " + (decision.reasons[-1] if decision.reasons else "")
        action = "signon.refused"
    target = decision.user or decision.identified
    fold_key = (action, target.pk if target else None, detail["sha256"], decision.method, username, source_address)
    if not decision.ok and not _refusal_budget(source_address):
        # One address producing many distinct refusals (random usernames, freshly made
        # certificates) gets one entry a minute that counts them, not a row each.
        fold_key = ("signon.refused", "many", source_address)
        summary = f"Many sign-on refusals over {label} from {source_address or 'an unknown address'}; counted here."

    def keep_certificates():
        # Kept, so that the audit log can open the doctor on exactly what was presented.
        for presented_cert in (cert, *presented.chain) if cert is not None else ():
            Certificate.objects.store(presented_cert)

    AuditEvent.objects.record_repeatable(
        fold_key,
        "sign-on",
        action,
        summary[:1000],
        on_new=keep_certificates,
        target=target,
        detail=detail,
        source_address=source_address,
    )
