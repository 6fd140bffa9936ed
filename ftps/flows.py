"""What the FTPS server decides and records beyond sign-on itself (which is ``signon.flows``,
the same decision and records as HTTPS, with the interface named FTPS)."""

from __future__ import annotations

from django.db import close_old_connections

from audit.models import AuditEvent
from certs import verdicts
from certs.x509 import sha256_fingerprint
from signon import flows as signon
from signon.proxy import Presented
from users.models import Interface, User

REFUSED = "Sign-on failed. Check your username, your password and your client certificate."


def fresh_database() -> None:
    """A long-lived connection thread drops a database connection that went stale or old."""
    close_old_connections()


def cannot_connect(presented: Presented, source_address: str | None) -> bool:
    """Whether the certificate from the handshake cannot connect; if so, the refusal is recorded
    exactly as a sign-on refusal over HTTPS is (the decision code is the same)."""
    if presented.cert is None:
        return False
    fresh_database()
    if verdicts.judge(presented.cert, presented.chain).connection.ok:
        return False
    signon.sign_on(presented, interface=Interface.FTPS, source_address=source_address)
    return True


def sign_on(presented: Presented, username: str, password: str | None, source_address: str | None):
    """USER and PASS, decided by the user's FTP policy (``signon.flows.sign_on``)."""
    fresh_database()
    return signon.sign_on(
        presented, username=username, password=password or None, interface=Interface.FTPS, source_address=source_address
    )


def still_signed_on(decision, presented: Presented, source_address: str | None) -> str | None:
    """Why an open FTPS session may not go on, or None: the same test an HTTPS session passes on
    every request (the user still active, the mode still allowing how they signed on, the
    certificate still authenticating them), against the database as it is now."""
    fresh_database()
    user = User.objects.filter(pk=decision.user.pk).first()
    if user is None:
        return "the user no longer exists"
    certificate = presented.cert
    fingerprint = sha256_fingerprint(certificate) if certificate is not None else None
    problem = signon.still_signed_on(user, decision.method, fingerprint, presented, interface=Interface.FTPS)
    if problem is not None:
        signon.record_session_end(user, f"{problem} (FTPS)", source_address)
    return problem


def refuse_data_connection(user, reason: str, source_address: str | None) -> None:
    fresh_database()
    AuditEvent.objects.record(
        signon.SIGN_ON,
        "ftps.data_refused",
        f"Refused a data connection for {user.username} over FTPS: {reason}.",
        target=user,
        source_address=source_address,
        detail={"interface": Interface.FTPS, "reason": reason},
    )
