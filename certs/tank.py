"""Use cases of the holding tank: certificates presented at sign-on that nobody has accepted yet.

Sign-on records what connected but did not authenticate; administrators accept an entry into
a profile (by the same use cases as adding it by hand) or remove it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from audit.models import AuditEvent
from users.models import User

from . import trust
from .flows import FlowError, add_cn, add_thumbprint, keep_certificates
from .models import Certificate, CredentialKind, TankEntry, TankKind, entry_key
from .x509 import single_common_name


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
    if user is None:
        return [_tank(None, TankKind.CERTIFICATE, row.sha1, row, interface, source_address)]
    entries = [_tank(user, TankKind.THUMBPRINT, row.sha1, row, interface, source_address)]
    if not trust.cn_problem(cert):
        entries.append(_tank(user, TankKind.CN, single_common_name(cert), row, interface, source_address))
    return [entry for entry in entries if entry is not None]


def _tank(user, kind, value, row, interface, source_address) -> TankEntry:
    lookup = TankEntry.objects.filter(user=user, kind=kind, key=entry_key(kind, value))
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


def accept_tank_entry(
    entry_id: int, actor, *, user=None, as_kind: str | None = None, source_address=None, allow_shared=False
) -> str:
    """Accept a holding-tank entry into a profile.

    A user's entry goes to that user's profile as what it is (thumbprint or CN). An org
    entry needs a ``user`` and is assigned by thumbprint unless ``as_kind`` is "cn". An entry
    other users would share is refused (``SharedEntry``) unless ``allow_shared``.
    """
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
    every tank (neither), the most recently seen first."""
    entries = TankEntry.objects.select_related("certificate", "user").order_by("-last_seen", "id")
    if user is not None:
        entries = entries.filter(user=user)
    elif org:
        entries = entries.filter(user__isnull=True)
    found: dict[tuple, Presented] = {}
    for entry in entries[:2000]:
        group = found.setdefault((entry.user_id, entry.certificate_id), Presented(entry.user, entry.certificate))
        group.entries[entry.kind] = entry
    return list(found.values())


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
