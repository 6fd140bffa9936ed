"""Use cases of administration: the org-level stores, users' profile entries and the holding tank.

Pages and management commands call these, so neither holds a rule of its own. Each
function that changes something records an audit event and returns what it changed (and
what the person should know next), so the caller can say so.

``actor`` is the User who acts, or a string naming who acts when no user does
("command line (root)").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from cryptography import x509
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from audit.models import AuditEvent
from users.models import User

from . import trust, verdicts
from .loading import load_certificates
from .models import (
    Certificate,
    Credential,
    CredentialKind,
    SelfRenewal,
    Store,
    StoreEntry,
    TankEntry,
    TankKind,
    TrustSettings,
    entry_key,
)
from .x509 import (
    CNError,
    clean_cn,
    directly_issued_by,
    display_name,
    format_thumbprint,
    is_ca,
    looks_like_an_end_entity,
    parse_thumbprint,
    printable,
    sha256_fingerprint,
    single_common_name,
)

# After any change to the trusted root store: the front proxy trusts its own copy of it.
REEXPORT = (
    "Re-export the front proxy's client CA bundle (download it from the root store page, or run "
    "manage.py certs export-roots FILE) and reload the proxy."
)


def _proxy_reminder() -> list[str]:
    """After a change to the trusted root store, what the front proxy needs; the built-in HTTPS
    server reads the store itself within a second."""
    return [] if settings.MFT_PROXY_FORMAT == "builtin" else [REEXPORT]


class FlowError(Exception):
    """An action cannot be done; the message says why, for a person."""


@dataclass
class Change:
    message: str
    changed: bool = True
    warnings: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    """What a use case did, in sentences: each change (or why nothing changed), and what the
    person should know or do next."""

    changes: list[Change] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(c.changed for c in self.changes)

    @property
    def messages(self) -> list[str]:
        return [c.message for c in self.changes]

    def all_warnings(self) -> list[str]:
        return [w for c in self.changes for w in c.warnings] + self.warnings


def keep_certificates(*certs: x509.Certificate) -> list[Certificate]:
    """Store certificates the app has seen (stored once), so pages can show them again."""
    return [Certificate.objects.store(cert) for cert in certs]


def find_issuer(cert) -> Certificate | None:
    """A certificate the app knows whose key signed ``cert`` (and whose subject is its issuer)."""
    for row in Certificate.objects.filter(subject=cert.issuer.rfc4514_string(), is_ca=True)[:20]:
        if directly_issued_by(cert, row.to_x509()):
            return row
    return None


# --- the org-level stores ---------------------------------------------------------------------


def add_to_store(store: str, certs: list[x509.Certificate], actor, source_address=None) -> Outcome:
    """Install certificates in the root store, or add them to the intermediate pool or the
    approved-CA list. All or nothing: one unsuitable certificate changes nothing."""
    phrase = Store(store).phrase
    if not certs:
        raise FlowError("No certificates were given.")
    if store in (Store.INTERMEDIATE, Store.APPROVED):
        for cert in certs:
            if not is_ca(cert):
                raise FlowError(
                    f"'{display_name(cert.subject)}' is not a CA certificate (its basic constraints do not mark "
                    f"it as a CA), so it cannot be added to {phrase}. Nothing was changed."
                )
    outcome = Outcome()
    now = timezone.now()
    with transaction.atomic():
        for row in keep_certificates(*certs):
            warnings = []
            if row.not_after <= now:
                warnings.append(f"'{row.subject_display}' expired on {row.not_after:%Y-%m-%d}.")
            if store == Store.ROOT and not row.is_ca:
                warnings.append(
                    f"'{row.subject_display}' is not a CA (no basic constraints marking it as one): "
                    "installing it trusts this one certificate itself, nothing it might sign."
                )
            elif store == Store.ROOT and looks_like_an_end_entity(row.to_x509()):
                warnings.append(
                    f"'{row.subject_display}' is marked as a CA (basic constraints CA:TRUE) without limiting what "
                    "its key may do, as certificates made with 'openssl req -x509' are: installing it trusts every "
                    "certificate its key signs, not only itself. If you meant to trust this one certificate, have "
                    "it made again without CA:TRUE."
                )
            _, created = StoreEntry.objects.get_or_create(store=store, certificate=row, defaults=StoreEntry.by(actor))
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
            outcome.changes.append(Change(message, created, warnings))
        if outcome.changed:
            TrustSettings.bump()
            if store == Store.ROOT:
                outcome.warnings.extend(_proxy_reminder())
    return outcome


def remove_from_store(store: str, thumbprint: str, actor, source_address=None) -> Outcome:
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
    return Outcome([Change(message)], _proxy_reminder() if store == Store.ROOT else [])


def _change_setting(
    field: str, value, *, already: str, done: str, action: str, detail: dict, actor, source_address, bump: bool = False
) -> str:
    """Set one org setting on the ``TrustSettings`` row, audited; ``already`` when it is set so.
    ``bump``: the setting changes who signs on, so every instance's cached trust is dropped."""
    with transaction.atomic():
        row = TrustSettings.get()
        if getattr(row, field) == value:
            return already
        TrustSettings.objects.filter(pk=row.pk).update(**{field: value})
        if bump:
            TrustSettings.bump()
        AuditEvent.objects.record(actor, action, done, source_address=source_address, detail=detail)
    return done


def set_match_cn(on: bool, actor, source_address=None) -> str:
    state = "on" if on else "off"
    return _change_setting(
        "match_cn",
        on,
        already=f"Match Cert CN to Username/Full Name is already {state}.",
        done=f"Turned Match Cert CN to Username/Full Name {state}.",
        action="match_cn.set",
        detail={"on": on},
        actor=actor,
        source_address=source_address,
        bump=True,
    )


def set_auto_accept_renewals(on: bool, actor, source_address=None) -> str:
    """The org setting: accept a presented renewal by itself while the certificate it renews is
    valid and the renewal's issuer is an approved CA (each acceptance audited and mailed)."""
    state = "on" if on else "off"
    return _change_setting(
        "auto_accept_renewals",
        on,
        already=f"Accept renewals automatically is already {state}.",
        done=f"Turned Accept renewals automatically {state}.",
        action="auto_renew.set",
        detail={"on": on},
        actor=actor,
        source_address=source_address,
    )


def set_self_renewal(mode: str, actor, source_address=None) -> str:
    """The org setting: whether users renew certificates the org CA issued them themselves, and
    whether such a renewal waits for an administrator ("approval") or replaces the old one at
    once ("automatic")."""
    if mode not in SelfRenewal.values:
        raise FlowError(f"Self-service renewal is {', '.join(SelfRenewal.values)}; not '{mode}'.")
    label = SelfRenewal(mode).label
    label = label[0].lower() + label[1:]
    return _change_setting(
        "self_renewal",
        mode,
        already=f"Self-service renewal is already {label}.",
        done=f"Self-service renewal is now {label}.",
        action="self_renewal.set",
        detail={"mode": mode},
        actor=actor,
        source_address=source_address,
    )


def export_roots() -> tuple[str, int]:
    """The trusted root store as one PEM bundle, for the front proxy's client CA file.

    Each certificate is preceded by a comment naming it. The bundle is read back before it
    is returned: it must hold exactly the store's certificates, so that nothing in a
    certificate's name can smuggle another certificate into the proxy's trust.
    """
    rows = [entry.certificate for entry in StoreEntry.objects.in_store(Store.ROOT).order_by("id")]
    parts = [
        f"# {_comment(row.subject_display)}\n# Thumbprint {row.thumbprint}, valid until {row.not_after:%Y-%m-%d}\n"
        f"{row.pem}"
        for row in rows
    ]
    bundle = "".join(parts)
    read_back = [sha256_fingerprint(c) for c in load_certificates(bundle.encode())] if rows else []
    if read_back != [row.sha256 for row in rows]:
        raise FlowError("The root store could not be exported faithfully; nothing was written.")
    return bundle, len(rows)


def _comment(text: str) -> str:
    """A name made harmless inside a PEM file: one line, and no run of dashes that a reader
    could take for the start of a certificate ("-----BEGIN CERTIFICATE-----")."""
    return re.sub(r"-{2,}", "-", printable(text))


# --- user profiles ----------------------------------------------------------------------------


def _add_credential(user, kind, value, actor, *, certificate=None, source="manual", source_address=None):
    key = entry_key(kind, value)
    existing = Credential.objects.filter(user=user, kind=kind, key=key).first()
    if existing is not None and existing.remove_at is not None:
        # Replaced by a renewal, and now added again on purpose: it stays.
        Credential.objects.filter(pk=existing.pk).update(remove_at=None, replaced_by=None)
        existing.remove_at = existing.replaced_by = None
        AuditEvent.objects.record(
            actor,
            "credential.add",
            f"Kept {existing.kind_phrase} {existing.shown_value} on {user.username}'s profile: it was to be removed "
            "after its renewal, and was added again.",
            target=user,
            source_address=source_address,
            detail={"kind": kind, "value": existing.shown_value, "source": source},
        )
        return existing, True
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            credential = Credential.objects.create(
                user=user, kind=kind, value=value, certificate=certificate, source=source, **Credential.by(actor)
            )
            # What is accepted is no longer waiting in the holding tank.
            TankEntry.objects.filter(user=user, kind=kind, key=key).delete()
            if kind == CredentialKind.THUMBPRINT:
                TankEntry.objects.filter(user__isnull=True, kind=TankKind.CERTIFICATE, key=key).delete()
            AuditEvent.objects.record(
                actor,
                "credential.add",
                f"Added {credential.kind_phrase} {credential.shown_value} to {user.username}'s profile.",
                target=user,
                source_address=source_address,
                detail={"kind": kind, "value": credential.shown_value, "source": source},
            )
    except IntegrityError:  # added at the same moment by another request
        return Credential.objects.get(user=user, kind=kind, key=key), False
    return credential, True


@dataclass(frozen=True)
class Overlap:
    """Another user that a profile entry would concern too, and how."""

    username: str
    how: str  # inside a sentence: "the CN 'Rich' is rich's username"


class SharedEntry(FlowError):
    """An entry that other users' sign-on would share; nothing was changed. ``overlaps`` says whom."""

    def __init__(self, what: str, overlaps: list[Overlap]):
        self.overlaps = overlaps
        names = ", ".join(dict.fromkeys(o.username for o in overlaps))
        super().__init__(
            f"{what} concerns {names} too: {'; '.join(o.how for o in overlaps)}. A certificate that matches it could "
            f"then sign on more than one user, and one that signs {names} on by itself today would stop signing "
            "anyone on without a username. Nothing was changed."
        )


def overlaps(user, kind: str, value: str, certificate: Certificate | None = None) -> list[Overlap]:
    """The other users that a thumbprint or CN on ``user``'s profile would concern as well.

    A CN overlaps another user's username, full name or profile CN (whether or not Match CN is
    on or any CA approved today: both can change later). A thumbprint overlaps another profile's
    thumbprint, and, for a certificate the app knows, every other user it authenticates now.
    """
    found: list[Overlap] = []
    key = entry_key(kind, value)
    others = User.objects.exclude(pk=user.pk)
    what = f"the CN '{value}'" if kind == CredentialKind.CN else "the thumbprint"
    if kind == CredentialKind.CN:
        for other in others.filter(Q(username_key=key) | Q(full_name_key=key)):
            which = "username" if other.username_key == key else "full name"
            found.append(Overlap(other.username, f"{what} is the {which} of user '{other.username}'"))
    holders = Credential.objects.filter(kind=kind, key=key).exclude(user=user).select_related("user")
    for holder in holders[:20]:
        found.append(Overlap(holder.user.username, f"{what} is on {holder.user.username}'s profile"))
    if kind == CredentialKind.THUMBPRINT and certificate is not None:
        known = {o.username for o in found}
        for decision in verdicts.judge(certificate.to_x509()).authentication.decisions:
            if decision.rule is not None and decision.username not in known | {user.username}:
                rule = trust.RULE_TEXT[decision.rule][0].lower() + trust.RULE_TEXT[decision.rule][1:]
                found.append(Overlap(decision.username, f"its certificate signs {decision.username} on by {rule}"))
    return found


def _refuse_unless_shared(user, kind, value, certificate, allow_shared: bool) -> None:
    if allow_shared:
        return
    shared = overlaps(user, kind, value, certificate)
    if shared:
        what = f"The CN '{value}'" if kind == CredentialKind.CN else f"The thumbprint {format_thumbprint(value)}"
        raise SharedEntry(what, shared)


def add_thumbprint(
    user, thumbprint: str, actor, *, certificate=None, source="manual", source_address=None, allow_shared=False
):
    """Assign a thumbprint to the user's profile. Returns (credential, added).

    Refused (``SharedEntry``) when it would concern other users too, unless ``allow_shared``.
    """
    sha1 = parse_thumbprint(thumbprint)
    if certificate is None:
        certificate = Certificate.objects.filter(sha1=sha1).first()
    _refuse_unless_shared(user, CredentialKind.THUMBPRINT, sha1, certificate, allow_shared)
    return _add_credential(
        user,
        CredentialKind.THUMBPRINT,
        sha1,
        actor,
        certificate=certificate,
        source=source,
        source_address=source_address,
    )


def add_cn(user, cn: str, actor, *, certificate=None, source="manual", source_address=None, allow_shared=False):
    """Assign a CN to the user's profile (authenticates only with an approved CA). Returns (credential, added).

    Refused (``SharedEntry``) when it would concern other users too, unless ``allow_shared``.
    """
    try:
        cn = clean_cn(cn)
    except CNError as exc:
        raise FlowError(str(exc)) from None
    _refuse_unless_shared(user, CredentialKind.CN, cn, certificate, allow_shared)
    return _add_credential(
        user, CredentialKind.CN, cn, actor, certificate=certificate, source=source, source_address=source_address
    )


def remove_credential(user, credential_id: int, actor, source_address=None) -> str:
    credential = Credential.objects.filter(user=user, pk=credential_id).first()
    if credential is None:
        raise FlowError(f"{user.username}'s profile has no certificate entry with id {credential_id}.")
    message = f"Removed {credential.kind_phrase} {credential.shown_value} from {user.username}'s profile."
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
    # A self-signed certificate that is not installed: offer to install it.
    offer_install: bool = False
    # The issuing CA, when the app knows it and it is not approved: offer to approve it.
    issuer_to_approve: Certificate | None = None


# What "Import from a file" records of each certificate.
RECORD_AS = {
    "thumbprint": "its thumbprint: this certificate alone signs the user on",
    "cn": "its CN: any certificate with this CN from an approved CA signs the user on",
    "both": "its thumbprint and its CN",
}


def import_to_profile(
    user, certs: list[x509.Certificate], actor, source_address=None, allow_shared=False, record_as="thumbprint"
):
    """Record certificates from a file on the user's profile, by ``record_as`` (see RECORD_AS).

    By thumbprint unless told otherwise: recording the CN lets any certificate with that CN
    from an approved CA sign the user on, which an administrator chooses on purpose. CA
    certificates in the same file (a chain) are not put on the profile. All or nothing: an
    entry other users would share refuses the whole import (``SharedEntry``) unless
    ``allow_shared``. Returns (imported, skipped_ca_names).
    """
    if record_as not in RECORD_AS:
        raise FlowError(f"Record a certificate by {', '.join(RECORD_AS)}; not by '{record_as}'.")
    user_certs = [c for c in certs if not is_ca(c)] or certs[:1]
    skipped = [display_name(c.subject) for c in certs if c not in user_certs]
    config = verdicts.trust_config()
    chain = [c for c in certs if c not in user_certs]
    results = []
    with transaction.atomic():
        for cert in user_certs:
            results.append(_import_one(user, cert, chain, config, actor, source_address, allow_shared, record_as))
    return results, skipped


def _import_one(user, cert, chain, config, actor, source_address, allow_shared, record_as) -> ImportedCertificate:
    verdict = verdicts.judge(cert, chain, username=user.username)
    (row,) = keep_certificates(cert)
    entry = {"certificate": row, "source": "import", "source_address": source_address, "allow_shared": allow_shared}
    notes, thumb_added, cn_added, offer_install = [], False, False, False
    if record_as in ("thumbprint", "both"):
        _, thumb_added = add_thumbprint(user, row.sha1, actor, **entry)
        if not thumb_added:
            notes.append(f"Thumbprint {row.thumbprint} was already on the profile.")
    others = Credential.objects.filter(kind=CredentialKind.THUMBPRINT, key=row.sha1).exclude(user=user)
    for other in others.select_related("user")[:5]:
        notes.append(f"This thumbprint is also on {other.user.username}'s profile.")
    problem = trust.cn_problem(cert)
    approval = verdict.approval
    if record_as in ("cn", "both"):
        if problem:
            notes.append(f"Its CN was not recorded: {problem}.")
        else:
            _, cn_added = add_cn(user, single_common_name(cert), actor, **entry)
            if not cn_added:
                notes.append(f"CN '{single_common_name(cert)}' was already on the profile.")
            if not approval.approved:
                notes.append(f"The CN authenticates only once its CA is approved: {approval.reason}.")
    if row.self_signed and not trust.installed_in_root_store(cert, config):
        offer_install = True
        notes.append(
            "The certificate is self-signed: it can connect only once it is installed in the trusted root store itself."
        )
    if not verdict.connection.ok:
        notes.append(f"It cannot connect yet: {verdict.connection.reason}")
    issuer = None if row.self_signed or approval.approved else find_issuer(cert)
    return ImportedCertificate(
        row, thumb_added, cn_added, row.self_signed, approval.approved, notes, offer_install, issuer
    )
