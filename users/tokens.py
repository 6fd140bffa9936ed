"""Use cases of personal API tokens: create (the token is shown once), list, revoke, and the check
that the API makes on every request that carries one.

A token reads ``mft_<key id>_<secret>``. Only the SHA-256 of the whole token is stored: the
secret has 256 bits of entropy, so a slow password hash would add nothing but time to every
request. The key id finds the row; the digests are then compared in constant time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import string

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.models import AuditEvent

from .models import ApiToken, User

PREFIX = "mft_"
KEY_ID_LENGTH = 12
MAX_EXPIRY_DAYS = 3650
_KEY_ALPHABET = string.ascii_letters + string.digits
_TOKEN = re.compile(rf"{PREFIX}([A-Za-z0-9]{{{KEY_ID_LENGTH}}})_([A-Za-z0-9_-]{{43}})")
# Compared against when no token has the key id, so that an unknown id costs the same comparison.
_NO_DIGEST = "0" * 64
# A token's last use is written at most this often (it is read on every request).
LAST_USED_EVERY = dt.timedelta(seconds=60)


class TokenRefused(Exception):
    """A token that signs nobody on; the message says why, for the person holding it."""


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def create_token(
    user: User, name: str, actor, *, expires_days: int | None = None, source_address=None
) -> tuple[ApiToken, str]:
    """Make a token for ``user``; returns (the row, the token). The token is never stored."""
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Give the token a name, e.g. the script that will use it."})
    if len(name) > ApiToken._meta.get_field("name").max_length:
        raise ValidationError({"name": "A token's name has at most 100 characters."})
    if "\x00" in name:
        raise ValidationError({"name": "A token's name cannot hold a NUL character."})
    if expires_days is not None and not 1 <= expires_days <= MAX_EXPIRY_DAYS:
        raise ValidationError({"expires_days": f"A token expires after 1 to {MAX_EXPIRY_DAYS} days."})
    if not user.is_active:
        raise ValidationError(f"{user.username} is inactive; an inactive user's token would sign nobody on.")
    key_id = "".join(secrets.choice(_KEY_ALPHABET) for _ in range(KEY_ID_LENGTH))
    raw = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    expires_at = timezone.now() + dt.timedelta(days=expires_days) if expires_days else None
    try:
        with transaction.atomic():
            token = ApiToken.objects.create(
                user=user, name=name, key_id=key_id, digest=_digest(raw), expires_at=expires_at, **ApiToken.by(actor)
            )
            until = f", valid until {expires_at:%Y-%m-%d}" if expires_at else ", with no expiry"
            AuditEvent.objects.record(
                actor,
                "token.create",
                f"Created API token '{name}' (id {token.pk}) for {user.username}{until}.",
                target=user,
                source_address=source_address,
                detail={"token": token.pk, "name": name, "expires_at": expires_at.isoformat() if expires_at else None},
            )
    except IntegrityError:
        raise ValidationError({"name": f"{user.username} has a token named '{name}' already."}) from None
    return token, raw


def tokens_of(user: User | None = None):
    """Tokens, newest first: one user's, or everybody's."""
    found = ApiToken.objects.select_related("user")
    return found.filter(user=user) if user is not None else found


def revoke_token(token_id: int, actor, *, user: User | None = None, source_address=None) -> str:
    """Revoke a token; with ``user``, only one of that user's (a person revoking their own)."""
    token = tokens_of(user).filter(pk=token_id).first()
    if token is None:
        whose = f"{user.username} has" if user is not None else "There is"
        raise ValidationError(f"{whose} no API token with id {token_id}.")
    if token.revoked_at is not None:
        return f"API token '{token.name}' (id {token.pk}) of {token.user.username} was revoked already."
    with transaction.atomic():
        revoked = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now(), revoked_by_name=str(actor)[:200]
        )
        message = f"Revoked API token '{token.name}' (id {token.pk}) of {token.user.username}."
        if revoked:
            AuditEvent.objects.record(
                actor,
                "token.revoke",
                message,
                target=token.user,
                source_address=source_address,
                detail={"token": token.pk, "name": token.name},
            )
    return message


def check(raw: str) -> ApiToken:
    """The token's row when ``raw`` signs its user on; ``TokenRefused`` with the reason otherwise.

    Only someone holding the whole token learns that it was revoked or expired: a wrong secret
    is refused as an unknown token.
    """
    match = _TOKEN.fullmatch(raw or "")
    if match is None:
        raise TokenRefused("The token is not one this service issues (they read mft_..., as shown once when made).")
    token = ApiToken.objects.select_related("user").filter(key_id=match[1]).first()
    given = _digest(raw)
    if not hmac.compare_digest(token.digest if token is not None else _NO_DIGEST, given) or token is None:
        raise TokenRefused("The token is not known: it may have been mistyped, or belong to another installation.")
    if token.revoked_at is not None:
        raise TokenRefused(f"The token '{token.name}' was revoked on {token.revoked_at:%Y-%m-%d %H:%M} UTC.")
    if token.expires_at is not None and token.expires_at <= timezone.now():
        raise TokenRefused(f"The token '{token.name}' expired on {token.expires_at:%Y-%m-%d %H:%M} UTC.")
    if not token.user.is_active:
        raise TokenRefused(f"The token's user '{token.user.username}' is inactive.")
    return token


def record_use(token: ApiToken, method: str, path: str, source_address: str | None) -> None:
    """Audit a use. Uses of the same token for the same operation from the same address are
    counted in the first entry of the minute (as repeated sign-ons are)."""
    path = path[:300]
    AuditEvent.objects.record_repeatable(
        ("token.use", token.pk, method, path, source_address),
        token.user,
        "token.use",
        f"{token.user.username} used API token '{token.name}' (id {token.pk}): {method} {path}",
        target=token.user,
        detail={"token": token.pk, "name": token.name, "method": method, "path": path},
        source_address=source_address,
    )
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_EVERY:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now, last_used_from=source_address)


def record_refusal(reason: str, method: str, path: str, source_address: str | None) -> None:
    """Audit a refused token; the same refusal from the same address is counted, not repeated."""
    AuditEvent.objects.record_repeatable(
        ("token.refused", reason, source_address),
        "API",
        "token.refused",
        f"Refused an API token from {source_address or 'an unknown address'}: {reason}",
        detail={"reason": reason, "method": method, "path": path[:300]},
        source_address=source_address,
    )


def token_as_dict(token: ApiToken) -> dict:
    def when(value):
        return value.isoformat() if value else None

    return {
        "id": token.pk,
        "user": token.user.username,
        "name": token.name,
        "state": token.state,
        "created_at": token.added_at.isoformat(),
        "created_by": token.added_by_name or None,
        "expires_at": when(token.expires_at),
        "revoked_at": when(token.revoked_at),
        "last_used_at": when(token.last_used_at),
        "last_used_from": token.last_used_from,
    }
