"""Use cases for users: create, set a password, set sign-on modes. Pages and commands call these."""

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction

from .models import AuditEvent, Interface, InterfaceDefault, SignOnMode, User


def create_user(
    username: str, actor, *, password=None, full_name="", email="", is_admin=False, source_address=None
) -> User:
    """Create a user with the org's default sign-on modes; raises ValidationError in words."""
    if password:
        validate_password(password, User(username=username, full_name=full_name, email=email))
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
        return f"{user.username}'s {label} sign-on mode is already {mode}."
    with transaction.atomic():
        old = getattr(user, field)
        setattr(user, field, mode)
        user.save(update_fields=[field])
        message = f"Set {user.username}'s {label} sign-on mode to {mode} (was {old})."
        AuditEvent.objects.record(
            actor,
            "user.policy",
            message,
            target=user,
            source_address=source_address,
            detail={"interface": interface, "mode": mode, "was": old},
        )
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
        message = f"New users now get {label} sign-on mode {mode}."
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
