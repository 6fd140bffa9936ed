"""Use cases for users: create, edit, set a password, set sign-on modes, and the listings of
users and of the audit log. Pages and commands call these."""

import copy
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Q, QuerySet
from django.utils.module_loading import import_string

from audit.models import AuditEvent
from audit.paging import Page, keyset_page
from certs.x509 import name_key

from .models import Interface, InterfaceDefault, Method, SignOnMode, User


def create_user(
    username: str, actor, *, password=None, full_name="", email="", is_admin=False, source_address=None
) -> User:
    """Create a user with the org's default sign-on modes; raises ValidationError in words."""
    if password:
        validate_password(password, User(username=username, full_name=full_name, email=email))
    try:
        with transaction.atomic():
            return _create_user(username, actor, password, full_name, email, is_admin, source_address)
    except IntegrityError:  # the same username created at the same moment by someone else
        raise ValidationError({"username": f"The username '{username}' is already taken."}) from None


def _create_user(username, actor, password, full_name, email, is_admin, source_address) -> User:
    with transaction.atomic():
        user = User.objects.create_user(username, password, full_name=full_name, email=email, is_admin=is_admin)
        role = "administrator" if is_admin else "user"
        AuditEvent.objects.record(
            actor,
            "user.create",
            f"Created {role} '{user.username}'.",
            target=user,
            source_address=source_address,
            detail={"https_mode": user.https_mode, "ftps_mode": user.ftps_mode, "is_admin": is_admin},
        )
    return user


def set_sign_on_mode(user: User, interface: str, mode: str, actor, source_address=None) -> str:
    if interface not in Interface.values:
        raise ValidationError(f"Unknown interface '{interface}'; use one of {', '.join(Interface.values)}.")
    if mode not in SignOnMode.values:
        raise ValidationError(f"Unknown sign-on mode '{mode}'; use one of {', '.join(SignOnMode.values)}.")
    field = f"{interface}_mode"
    label = Interface(interface).label
    if getattr(user, field) == mode:
        return f"{user.username}'s {label} sign-on mode is already “{SignOnMode(mode).label}”."
    if interface == Interface.HTTPS:
        refuse_locking_out_every_administrator(lambda admin: mode if admin.pk == user.pk else admin.https_mode)
    with transaction.atomic():
        old = getattr(user, field)
        setattr(user, field, mode)
        user.save(update_fields=[field])
        message = (
            f"Set {user.username}'s {label} sign-on mode to “{SignOnMode(mode).label}” (was “{SignOnMode(old).label}”)."
        )
        AuditEvent.objects.record(
            actor,
            "user.policy",
            message,
            target=user,
            source_address=source_address,
            detail={"interface": interface, "mode": mode, "was": old},
        )
    return message


def can_sign_in(user: User, https_mode: str) -> bool:
    """Whether the user could sign in to these pages under ``https_mode``, with what they have:
    a password, a certificate entry on the profile, or both."""
    methods = SignOnMode(https_mode).methods
    password, certificate = user.has_usable_password(), user.credentials.exists()
    return user.is_active and (
        (Method.PASSWORD in methods and password)
        or (Method.CERTIFICATE in methods and certificate)
        or (Method.BOTH in methods and password and certificate)
    )


def refuse_locking_out_every_administrator(new_mode, without: User | None = None, refusal: str | None = None) -> None:
    """Refuse new HTTPS modes (``new_mode(admin)``), or the loss of the user ``without``, under
    which no administrator could sign in any more, when one can today: that is how the last
    administrator locks everybody out. ``refusal`` says why in the words of the change asked for."""
    admins = list(User.objects.filter(is_admin=True, is_active=True))
    if not any(can_sign_in(a, a.https_mode) for a in admins):
        return  # nobody can today: a change can only help
    remaining = [a for a in admins if without is None or a.pk != without.pk]
    if not any(can_sign_in(a, new_mode(a)) for a in remaining):
        raise ValidationError(
            refusal
            or "No administrator could sign in after this change (none would have a password or a certificate on "
            "the profile that the new HTTPS mode accepts), so it was not made. Add a certificate to an "
            "administrator's profile first, or keep a mode that accepts a password."
        )


@dataclass(frozen=True)
class Removal:
    """Something of a user's that goes when they are deleted: the sentence the confirmation
    shows ("" when there is none of it) and its figures by name, e.g. ``{"tank_entries": 2}``."""

    sentence: str
    counts: dict[str, int]


@dataclass(frozen=True)
class DeletionPreview:
    """What deleting a user would do: what goes with them, in sentences and in figures, and
    why it would be refused (None when it would not)."""

    username: str
    removed: list[str]
    counts: dict[str, int]
    refused: str | None


def removals(user: User) -> list[Removal]:
    """What deleting the user removes with them: asked of every app that keeps something per
    user (settings name them in ``USER_DELETION_REPORTS``, as ``MODE_CHANGE_IMPACT``)."""
    return [removal for path in settings.USER_DELETION_REPORTS for removal in import_string(path)(user)]


def what_goes_with(user: User) -> list[str]:
    """What deleting the user removes with them, in sentences."""
    return [removal.sentence for removal in removals(user) if removal.sentence]


def refuse_deleting(user: User, actor) -> None:
    """Nobody deletes themselves, and no deletion leaves no administrator able to sign in;
    raises ``ValidationError`` saying so."""
    if isinstance(actor, User) and actor.pk == user.pk:
        raise ValidationError("You cannot delete yourself; ask another administrator to do it.")
    if user.is_admin:
        refuse_locking_out_every_administrator(
            lambda admin: admin.https_mode,
            without=user,
            refusal=f"No administrator could sign in after deleting {user.username}: they are the last "
            "administrator who can, so they were not deleted. Make sure another administrator can sign in first.",
        )


def deletion_preview(user: User, actor) -> DeletionPreview:
    """What ``delete_user`` would remove, and whether it would refuse, changing nothing."""
    found = removals(user)
    counts = {name: value for removal in found for name, value in removal.counts.items()}
    try:
        refuse_deleting(user, actor)
        refused = None
    except ValidationError as error:
        refused = " ".join(error.messages)
    return DeletionPreview(user.username, [r.sentence for r in found if r.sentence], counts, refused)


def delete_user(user: User, actor, source_address=None) -> str:
    """Delete a user and what is theirs (profile entries, holding tank, home folder); the audit
    log keeps every entry about them, by name. Nobody deletes themselves, and no deletion leaves
    no administrator able to sign in."""
    refuse_deleting(user, actor)
    gone = what_goes_with(user)
    username = user.username
    with transaction.atomic():
        message = f"Deleted user '{username}'." + (" " + " ".join(gone) if gone else "")
        AuditEvent.objects.record(
            actor, "user.delete", message, target=user, source_address=source_address, detail={"removed": gone}
        )
        user.delete()
    return message


def set_password(user: User, password: str, actor, source_address=None) -> str:
    validate_password(password, user)
    with transaction.atomic():
        user.set_password(password)
        user.save(update_fields=["password"])
        message = f"Set a new password for {user.username}."
        AuditEvent.objects.record(actor, "user.password", message, target=user, source_address=source_address)
    return message


def interface_defaults() -> dict[str, str]:
    return InterfaceDefault.modes()


def set_interface_default(interface: str, mode: str, actor, source_address=None) -> str:
    if interface not in Interface.values or mode not in SignOnMode.values:
        raise ValidationError("Choose a known interface and sign-on mode.")
    label = Interface(interface).label
    with transaction.atomic():
        InterfaceDefault.objects.update_or_create(interface=interface, defaults={"mode": mode})
        message = f"New users now get {label} sign-on mode “{SignOnMode(mode).label}”."
        AuditEvent.objects.record(
            actor,
            "defaults.set",
            message,
            source_address=source_address,
            detail={"interface": interface, "mode": mode},
        )
    return message


def user_as_dict(user: User) -> dict:
    return {
        "username": user.username,
        "full_name": user.full_name,
        "email": user.email,
        "is_active": user.is_active,
        "is_admin": user.is_admin,
        "https_mode": user.https_mode,
        "ftps_mode": user.ftps_mode,
        "date_joined": user.date_joined.isoformat(),
    }


# --- editing a user ----------------------------------------------------------------------------

# The fields an administrator may change on a user, as the audit summary names them.
EDITABLE_FIELDS = {"full_name": "full name", "email": "email", "is_active": "active", "is_admin": "administrator"}


def update_user(user: User, actor, *, source_address=None, **changes) -> str:
    """Change a user's full name, email, active or administrator flag; audit what changed.

    Raises ``ValidationError`` (keyed by field) for a bad value, and when an administrator
    would remove their own administrator flag or deactivate themselves: that is how the last
    administrator locks everybody out.
    """
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"update_user() cannot change {', '.join(sorted(unknown))}.")
    if "full_name" in changes:
        changes["full_name"] = (changes["full_name"] or "").strip()
    if "email" in changes:
        changes["email"] = User.objects.normalize_email((changes["email"] or "").strip())
    refused = {}
    if isinstance(actor, User) and actor.pk == user.pk:
        if changes.get("is_admin") is False and user.is_admin:
            refused["is_admin"] = "You cannot remove your own administrator flag; ask another administrator to do it."
        if changes.get("is_active") is False and user.is_active:
            refused["is_active"] = "You cannot deactivate yourself; ask another administrator to do it."
    for name, value in changes.items():
        try:
            changes[name] = User._meta.get_field(name).clean(value, user)
        except ValidationError as error:
            refused.setdefault(name, error.messages)
    if refused:
        raise ValidationError(refused)

    changed = {name: (getattr(user, name), value) for name, value in changes.items() if getattr(user, name) != value}
    if not changed:
        return f"Nothing changed for {user.username}."
    _check_record_rules(user, changed)
    with transaction.atomic():
        for name, (_old, new) in changed.items():
            setattr(user, name, new)
        fields = list(changed) + (["full_name_key"] if "full_name" in changed else [])
        user.save(update_fields=fields)
        message = _describe_changes(user.username, changed)
        AuditEvent.objects.record(
            actor,
            "user.update",
            message,
            target=user,
            source_address=source_address,
            detail={name: {"from": old, "to": new} for name, (old, new) in changed.items()},
        )
    return message


def _check_record_rules(user: User, changed: dict) -> None:
    """The model's own rules (a full name may not be another user's username...) on the user as
    it would become; only complaints about the fields being changed count."""
    candidate = copy.copy(user)
    for name, (_old, new) in changed.items():
        setattr(candidate, name, new)
    try:
        candidate.clean()
    except ValidationError as error:
        relevant = {name: messages for name, messages in error.message_dict.items() if name in changed}
        if relevant:
            raise ValidationError(relevant) from None


def _describe_changes(username: str, changed: dict) -> str:
    sentences = []
    texts = [
        f"{EDITABLE_FIELDS[name]} from {old or '(blank)'} to {new or '(blank)'}"
        for name, (old, new) in changed.items()
        if name in ("full_name", "email")
    ]
    if texts:
        sentences.append(f"Changed {username}'s {' and '.join(texts)}.")
    if "is_admin" in changed:
        made = changed["is_admin"][1]
        sentences.append(f"Made {username} an administrator." if made else f"{username} is no longer an administrator.")
    if "is_active" in changed:
        sentences.append(f"Reactivated {username}." if changed["is_active"][1] else f"Deactivated {username}.")
    return " ".join(sentences)


# --- interface defaults for everybody ----------------------------------------------------------


def defaults_preview() -> dict[str, dict]:
    """Per interface, the default mode and how many users have each other mode: what applying
    the defaults to all existing users would change. One grouped count per interface."""
    preview = {}
    for interface, mode in InterfaceDefault.modes().items():
        column = f"{interface}_mode"
        rows = User.objects.exclude(**{column: mode}).values(column).annotate(users=Count("pk")).order_by(column)
        preview[interface] = {"mode": mode, "from": {row[column]: row["users"] for row in rows}}
    return preview


def apply_defaults_to_all(actor, source_address=None) -> dict[str, int]:
    """Give every existing user the default sign-on mode on each interface, in one transaction.

    Returns how many users changed per interface. One bulk UPDATE per interface, so it takes
    the same few statements with 100,000 users as with ten.
    """
    with transaction.atomic():
        preview = defaults_preview()
        refuse_locking_out_every_administrator(lambda admin: preview[Interface.HTTPS]["mode"])
        changed = {}
        for interface, plan in preview.items():
            column = f"{interface}_mode"
            changed[interface] = User.objects.exclude(**{column: plan["mode"]}).update(**{column: plan["mode"]})
        parts = [
            f"{Interface(interface).label} {preview[interface]['mode']} ({count} changed)"
            for interface, count in changed.items()
        ]
        AuditEvent.objects.record(
            actor,
            "defaults.apply",
            f"Applied the interface defaults to all existing users: {', '.join(parts)}.",
            source_address=source_address,
            detail={interface: {**preview[interface], "changed": changed[interface]} for interface in changed},
        )
    return changed


# --- listings ---------------------------------------------------------------------------------


def search_users(query: str = "") -> QuerySet:
    """Users whose username, full name or email contains ``query``.

    Usernames and full names are compared as CNs are (case, accents' composition and white
    space ignored) through their stored keys, so no function has to run on each row.
    """
    users = User.objects.all()
    query = (query or "").strip()
    if not query:
        return users
    key = name_key(query)
    return users.filter(Q(username_key__contains=key) | Q(full_name_key__contains=key) | Q(email__icontains=query))


def count_pending(users: list[User]) -> None:
    """Set ``pending`` on each user: entries waiting in their holding tank. One query for the page."""
    counts = dict(
        User.objects.filter(pk__in=[u.pk for u in users]).annotate(n=Count("tank_entries")).values_list("pk", "n")
    )
    for user in users:
        user.pending = counts.get(user.pk, 0)


def user_page(query: str = "", *, after: str | None = None, before: str | None = None, size=50) -> Page:
    """A page of users in username order, optionally searched; ``after``/``before`` are username keys."""
    return keyset_page(
        search_users(query),
        ("username_key",),
        after=(after,) if after is not None else None,
        before=(before,) if before is not None else None,
        size=size,
    )
