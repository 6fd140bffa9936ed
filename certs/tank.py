"""Use cases of the holding tank: certificates presented at sign-on that nobody has accepted yet.

Sign-on records what connected but did not authenticate; administrators accept an entry into
a profile (by the same use cases as adding it by hand) or remove it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from audit.models import AuditEvent
from users.models import User

from . import revocation as rev
from . import trust
from .flows import FlowError, add_cn, add_thumbprint, keep_certificates
from .models import (
    Certificate,
    Credential,
    CredentialKind,
    TankEntry,
    TankKind,
    TrustSettings,
    entry_key,
    renewal_phrase,
)
from .x509 import directly_issued_by, single_common_name

log = logging.getLogger(__name__)

# Who acts when the app accepts a renewal by itself (the org setting).
AUTOMATIC = "automatic renewal"
# The most days an old certificate may be kept after its renewal is accepted.
MAX_KEEP_OLD_DAYS = 3650


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
    if any(d.rule is not None for d in verdict.authentication.decisions):
        return []
    (row,) = keep_certificates(cert)
    user = User.objects.find(username) if username else None
    issuer = verdict.connection.path[1] if len(verdict.connection.path) > 1 else None
    renewed = renewal_candidates(row, cert, user, issuer)
    renewal = renewed[0] if renewed else None
    checked = rev.summary(verdict.connection.revocation)
    if user is None:
        entries = [_tank(None, TankKind.CERTIFICATE, row.sha1, row, interface, source_address, renewal, checked)]
    else:
        entries = [_tank(user, TankKind.THUMBPRINT, row.sha1, row, interface, source_address, renewal, checked)]
        if not trust.cn_problem(cert):
            cn = single_common_name(cert)
            entries.append(_tank(user, TankKind.CN, cn, row, interface, source_address, renewal, checked))
    entries = [entry for entry in entries if entry is not None]
    automatic = renewal is not None and entries and TrustSettings.get().auto_accept_renewals
    if automatic and automatic_refusal(verdict, renewal, renewed) is None and _accept_automatically(entries[0]):
        return []
    return entries


def _tank(user, kind, value, row, interface, source_address, renewal=None, revocation="") -> TankEntry:
    lookup = TankEntry.objects.filter(user=user, kind=kind, key=entry_key(kind, value))
    changes = dict(
        last_seen=timezone.now(),
        attempts=F("attempts") + 1,
        interface=interface,
        source_address=source_address,
        certificate=row,
        renewal_of=renewal,
        revocation=revocation,
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
                    renewal_of=renewal,
                    revocation=revocation,
                )
        except IntegrityError:  # a concurrent attempt created it first
            lookup.update(**changes)
    return lookup.select_related("renewal_of").first()  # None if an administrator accepted it in the meantime


# --- renewals -------------------------------------------------------------------------------------


def renewal_candidates(row: Certificate, cert, user: User | None, issuer=None) -> list[Credential]:
    """The profile entries (by thumbprint, still in force) that this certificate looks like the
    renewal of: the same non-empty subject from the same issuing CA, or the same key; and a
    newer validity (it starts no earlier and ends later). Only ``user``'s when a user is named.
    The one ending last first.

    "The same issuing CA" is ``issuer``, the CA certificate that the path validation found for
    this certificate, when its key verifies the old certificate too: a CA that only copies the
    name of the old one's issuer does not make a renewal."""
    match = Q()
    if row.key_sha256:
        match |= Q(certificate__key_sha256=row.key_sha256)
    if len(cert.subject) > 0:
        match |= Q(certificate__subject=row.subject, certificate__issuer=row.issuer)
    if not match:
        return []
    found = (
        Credential.objects.in_force()
        .filter(match, kind=CredentialKind.THUMBPRINT, certificate__isnull=False)
        .exclude(certificate=row)
        .filter(certificate__not_after__lt=row.not_after, certificate__not_before__lte=row.not_before)
        .select_related("certificate", "user")
        .order_by("-certificate__not_after", "id")
    )
    if user is not None:
        found = found.filter(user=user)
    renewed = []
    for credential in found[:20]:
        old = credential.certificate
        # The stored names are printable renderings: compare the names themselves.
        same_key = bool(row.key_sha256) and old.key_sha256 == row.key_sha256
        old_cert = old.to_x509()
        same_names = (
            len(cert.subject) > 0
            and old_cert.subject == cert.subject
            and old_cert.issuer == cert.issuer
            and issuer is not None
            and directly_issued_by(old_cert, issuer)
        )
        if same_key or same_names:
            renewed.append(credential)
    return renewed


def automatic_refusal(verdict: trust.Verdict, renewal: Credential, renewed: list[Credential]) -> str | None:
    """Why a renewal may not be accepted automatically (None: it may), in words."""
    old, now = renewal.certificate, timezone.now()
    if not verdict.connection.ok:
        return "the certificate cannot connect"
    if not verdict.approval.approved:
        return f"its issuer is not an approved CA ({verdict.approval.reason})"
    if not (old.not_before <= now < old.not_after):
        return f"the certificate it renews ({old.thumbprint}) is not valid any more"
    if renewal.remove_at is not None:
        return f"the certificate it renews ({old.thumbprint}) has been replaced already"
    if len({c.user_id for c in renewed}) > 1:
        return "it looks like the renewal of certificates on more than one user's profile"
    return None


def _accept_automatically(entry: TankEntry) -> bool:
    try:
        message = accept_renewal(entry.pk, AUTOMATIC, automatic=True)
    except FlowError:  # e.g. the thumbprint would be shared with another user: an administrator decides
        return False
    recipients = list(
        User.objects.filter(is_admin=True, is_active=True).exclude(email="").values_list("email", flat=True)
    )
    if not recipients:
        return True
    try:  # sign-on goes on when the mail server does not answer; the audit log has the acceptance
        send_mail(
            f"[MFT] Renewal accepted automatically for {entry.renewal_of.user.username}",
            f'{message}\n\nThe org setting "Accept renewals automatically" is on: a renewal is accepted by itself '
            "when the certificate it renews is still valid and its issuer is an approved CA. If this renewal was "
            "not expected, remove the new thumbprint from the user's profile and turn the setting off.\n",
            settings.DEFAULT_FROM_EMAIL,
            recipients,
        )
    except Exception:
        log.exception("Could not mail the administrators about an automatically accepted renewal")
    return True


def removal_time(old: Certificate, keep_old_days: int | None):
    """When an entry replaced by a renewal goes: at its certificate's expiry (``None``), at once
    (0) or after ``keep_old_days`` days."""
    now = timezone.now()
    if keep_old_days is None:
        return max(old.not_after, now)
    if not isinstance(keep_old_days, int) or not 0 <= keep_old_days <= MAX_KEEP_OLD_DAYS:
        raise FlowError(f"Keep the old certificate for 0 to {MAX_KEEP_OLD_DAYS} days.")
    return now + timedelta(days=keep_old_days)


def accept_renewal(
    entry_id: int,
    actor,
    *,
    user=None,
    keep_old_days: int | None = None,
    source_address=None,
    allow_shared=False,
    automatic=False,
) -> str:
    """Accept a presented certificate as the renewal of the profile entry it renews, in one step:
    its thumbprint goes on that user's profile and the old entry is removed at its expiry
    (``keep_old_days`` None), at once (0), or after that many days; until then both sign on."""
    entry = TankEntry.objects.select_related("user", "certificate").filter(pk=entry_id).first()
    if entry is None:
        raise FlowError(f"There is no holding-tank entry with id {entry_id}.")
    if entry.renewal_of_id is None:
        raise FlowError(
            f"Entry {entry_id} is not the renewal of a certificate on a profile, so there is nothing to replace: "
            "accept it without replacing."
        )
    with transaction.atomic():
        old = (
            Credential.objects.select_for_update(of=("self",))
            .select_related("user", "certificate")
            .filter(pk=entry.renewal_of_id)
            .first()
        )
        if old is None or old.certificate is None:
            raise FlowError("The profile entry this certificate renews is not there any more; accept it by itself.")
        owner = old.user
        if user is not None and user.pk != owner.pk:
            raise FlowError(
                f"Entry {entry_id} renews a certificate on {owner.username}'s profile; it can only replace it there."
            )
        if entry.user_id is not None and entry.user_id != owner.pk:
            raise FlowError(f"Entry {entry_id} is in {entry.owner_phrase} but renews {owner.username}'s certificate.")
        # The certificate's other entries are resolved too.
        TankEntry.objects.filter(Q(user=owner) | Q(user__isnull=True), certificate=entry.certificate).delete()
        verb = "Accepted automatically" if automatic else "Accepted"
        return replace_credential(
            old,
            entry.certificate,
            actor,
            verb=verb,
            keep_old_days=keep_old_days,
            source="renewal",
            source_address=source_address,
            allow_shared=allow_shared,
            detail={"entry": entry_id, "automatic": automatic},
            action="tank.renewal",
        )


def replace_credential(
    old: Credential,
    certificate: Certificate,
    actor,
    *,
    verb: str,
    keep_old_days: int | None = None,
    source: str,
    source_address=None,
    allow_shared=False,
    detail: dict | None = None,
    action: str,
) -> str:
    """Put ``certificate``'s thumbprint on ``old``'s profile as its renewal and schedule ``old``'s
    removal (see ``removal_time``), audited as ``action``. Call inside a transaction."""
    owner = old.user
    when = removal_time(old.certificate, keep_old_days)
    new, _ = add_thumbprint(
        owner,
        certificate.sha1,
        actor,
        certificate=certificate,
        source=source,
        source_address=source_address,
        allow_shared=allow_shared,
    )
    renews = f"{verb} thumbprint {new.shown_value} into {owner.username}'s profile as the renewal of {old.shown_value}"
    if when <= timezone.now():
        old.delete()
        message = f"{renews}, which was removed at once."
    else:
        Credential.objects.filter(pk=old.pk).update(remove_at=when, replaced_by=new)
        at = "at its expiry, " if keep_old_days is None else ""
        message = f"{renews}; the old one stops signing on {at}{when:%Y-%m-%d %H:%M} UTC and is then removed."
    AuditEvent.objects.record(
        actor,
        action,
        message,
        target=owner,
        source_address=source_address,
        detail={"new": new.shown_value, "old": old.shown_value, "remove_at": when.isoformat(), **(detail or {})},
    )
    return message


def remove_replaced(actor, now=None) -> list[str]:
    """Remove the profile entries replaced by renewals whose time has come (the expiry run
    calls this; sign-on ignores them from their time on in any case)."""
    now = now or timezone.now()
    messages = []
    due = Credential.objects.filter(remove_at__lte=now).select_related("user")
    for credential in due[:1000]:
        message = (
            f"Removed {credential.kind_phrase} {credential.shown_value} from {credential.user.username}'s profile: "
            f"replaced by a renewal, due on {credential.remove_at:%Y-%m-%d %H:%M} UTC."
        )
        with transaction.atomic():
            if not Credential.objects.filter(pk=credential.pk).delete()[0]:
                continue
            AuditEvent.objects.record(
                actor,
                "credential.remove",
                message,
                target=credential.user,
                detail={"kind": credential.kind, "value": credential.shown_value, "replaced": True},
            )
        messages.append(message)
    return messages


def accept_tank_entry(
    entry_id: int,
    actor,
    *,
    user=None,
    as_kind: str | None = None,
    source_address=None,
    allow_shared=False,
    replace=False,
    keep_old_days: int | None = None,
) -> str:
    """Accept a holding-tank entry into a profile.

    A user's entry goes to that user's profile as what it is (thumbprint or CN). An org
    entry needs a ``user`` and is assigned by thumbprint unless ``as_kind`` is "cn". An entry
    other users would share is refused (``SharedEntry``) unless ``allow_shared``. With
    ``replace`` it is accepted as a renewal (``accept_renewal``).
    """
    if replace:
        if as_kind == CredentialKind.CN:
            raise FlowError("A renewal replaces a thumbprint with a thumbprint; it cannot be accepted as a CN.")
        return accept_renewal(
            entry_id,
            actor,
            user=user,
            keep_old_days=keep_old_days,
            source_address=source_address,
            allow_shared=allow_shared,
        )
    if keep_old_days is not None:
        raise FlowError("Keeping the old certificate for some days applies only when replacing it by its renewal.")
    entry = TankEntry.objects.select_related("user", "certificate").filter(pk=entry_id).first()
    if entry is None:
        raise FlowError(f"There is no holding-tank entry with id {entry_id}.")
    if entry.user_id is not None:
        if user is not None and user.pk != entry.user_id:
            raise FlowError(
                f"Entry {entry_id} is in {entry.owner_phrase}; it can only be accepted for {entry.user.username}."
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
                allow_shared=allow_shared,
            )
        else:
            credential, added = add_thumbprint(
                user,
                entry.certificate.sha1,
                actor,
                certificate=entry.certificate,
                source="holding tank",
                source_address=source_address,
                allow_shared=allow_shared,
            )
        # The other entry of the same certificate stays: accepting its CN too is a decision of its own.
        TankEntry.objects.filter(pk=entry.pk).delete()
        what = credential.kind_phrase
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
    message = f"Removed {entry.kind_phrase} {entry.shown_value} from {entry.owner_phrase}."
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


# --- presented certificates: a tank's entries, one certificate at a time ---------------------------


@dataclass
class Presented:
    """One certificate waiting in one tank, with its entries: in a user's tank a thumbprint and
    (when it has a usable CN) a CN entry; in the org tank one entry."""

    owner: User | None
    certificate: Certificate
    entries: dict[str, TankEntry] = field(default_factory=dict)  # by kind

    @property
    def renewal_of(self) -> Credential | None:
        return next((e.renewal_of for e in self.entries.values() if e.renewal_of_id), None)

    @property
    def renewal_phrase(self) -> str:
        return renewal_phrase(self.renewal_of) if self.renewal_of else ""

    @property
    def any_entry(self) -> TankEntry:
        """The entry to accept as a renewal by (its thumbprint entry where there is one)."""
        return self.entries.get("thumbprint") or next(iter(self.entries.values()))

    @property
    def latest(self) -> TankEntry:
        return max(self.entries.values(), key=lambda e: e.last_seen)

    @property
    def attempts(self) -> int:
        return max(e.attempts for e in self.entries.values())

    @property
    def first_seen(self):
        return min(e.first_seen for e in self.entries.values())


def pending(user: User | None = None, *, org: bool = False) -> list[Presented]:
    """The presented certificates waiting in ``user``'s tank, in the org tank (``org``), or in
    every tank (neither): renewals first, then the most recently seen first."""
    entries = TankEntry.objects.select_related(
        "certificate", "user", "renewal_of__user", "renewal_of__certificate"
    ).order_by("-last_seen", "id")
    if user is not None:
        entries = entries.filter(user=user)
    elif org:
        entries = entries.filter(user__isnull=True)
    found: dict[tuple, Presented] = {}
    for entry in entries[:2000]:
        group = found.setdefault((entry.user_id, entry.certificate_id), Presented(entry.user, entry.certificate))
        group.entries[entry.kind] = entry
    return sorted(found.values(), key=lambda p: p.renewal_of is None)


def remove_presented(owner, certificate: Certificate, actor, source_address=None) -> str:
    """Remove every entry of one presented certificate from one tank (``owner`` None: the org's)."""
    entries = list(TankEntry.objects.filter(user=owner, certificate=certificate))
    if not entries:
        raise FlowError("That certificate is not waiting in the holding tank any more.")
    where = entries[0].owner_phrase
    message = f"Removed '{certificate.subject_display}' ({certificate.thumbprint}) from {where}."
    with transaction.atomic():
        TankEntry.objects.filter(pk__in=[e.pk for e in entries]).delete()
        AuditEvent.objects.record(
            actor,
            "tank.remove",
            message,
            target=owner,
            source_address=source_address,
            detail={"certificate": certificate.thumbprint, "entries": [e.kind for e in entries]},
        )
    return message
