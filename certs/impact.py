"""What a change to the trust configuration would break. Pure: no Django.

``impact`` judges the certificates the app knows under the configuration before and after
a change, and lists those that would stop connecting, or stop authenticating someone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cryptography import x509

from . import trust
from .x509 import display_name, format_thumbprint, sha1_thumbprint, sha256_fingerprint


@dataclass(frozen=True)
class KnownCertificate:
    """A certificate the app knows (on a profile, or seen at sign-on), with what judging it needs."""

    cert: x509.Certificate
    profiles: tuple[trust.Profile, ...]
    chain: tuple[x509.Certificate, ...] = ()
    # Where the app knows it from, for the person reading the list ("on rich's profile").
    origin: str = ""


@dataclass(frozen=True)
class Consequence:
    subject: str
    thumbprint: str
    sha256: str
    origin: str
    before: str  # the category before the change
    after: str
    users_before: tuple[str, ...]
    users_after: tuple[str, ...]
    reason: str  # why it fails after the change

    @property
    def lost_users(self) -> tuple[str, ...]:
        return tuple(u for u in self.users_before if u not in self.users_after)


def signed_on_users(cert, connection, config, profiles) -> tuple[str, ...]:
    """Whom the certificate authenticates when it connects: with a username, each user it
    authenticates (without one, several would be refused as ambiguous)."""
    if not connection.ok:
        return ()
    approval = trust.issuing_ca_approval(cert, connection.path, config.approved)
    return tuple(
        decision.username
        for decision in (trust.decide(cert, p, config.match_cn, approval) for p in profiles)
        if decision.authenticates
    )


def impact(known, before: trust.TrustConfig, after: trust.TrustConfig, at: datetime) -> list[Consequence]:
    """The known certificates that would stop connecting or stop authenticating someone."""
    consequences = []
    for item in known:
        was = trust.connect(item.cert, item.chain, before, at)
        will = trust.connect(item.cert, item.chain, after, at)
        users_before = signed_on_users(item.cert, was, before, item.profiles)
        users_after = signed_on_users(item.cert, will, after, item.profiles)
        lost_connection = was.ok and not will.ok
        lost_users = [u for u in users_before if u not in users_after]
        if not lost_connection and not lost_users:
            continue
        reason = will.reason if lost_connection else _why_not(item, will, after, lost_users)
        consequences.append(
            Consequence(
                subject=display_name(item.cert.subject),
                thumbprint=format_thumbprint(sha1_thumbprint(item.cert)),
                sha256=sha256_fingerprint(item.cert),
                origin=item.origin,
                before=_category(was, users_before),
                after=_category(will, users_after),
                users_before=users_before,
                users_after=users_after,
                reason=reason,
            )
        )
    return consequences


def _category(connection, users) -> str:
    if not connection.ok:
        return trust.CANNOT_CONNECT
    return trust.AUTHENTICATES if users else trust.CONNECTS_ONLY


def _why_not(item: KnownCertificate, connection, config, lost_users) -> str:
    approval = trust.issuing_ca_approval(item.cert, connection.path, config.approved)
    for profile in item.profiles:
        if profile.username in lost_users:
            decision = trust.decide(item.cert, profile, config.match_cn, approval)
            return "; ".join(check.reason for _, check in decision.checks if not check.held)
    return ""
