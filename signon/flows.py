"""Sign-on: the decision on one attempt, and how it is recorded.

``decide`` applies the user's sign-on mode for the interface to what was presented (a
certificate, judged by the trust engine exactly as the doctor judges it) and a username and
password; ``record`` writes the decision to the audit log and puts a certificate that
connected but did not authenticate into a holding tank; ``sign_on`` does both. The
middleware, the sign-in form and the authentication backend all come here, so HTTPS sign-on
has one set of rules.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass, field

from django.core.cache import cache
from django.db import connection, transaction

from audit.models import AuditEvent
from certs import trust, verdicts
from certs.flows import keep_certificates
from certs.tank import record_presentation
from certs.x509 import format_thumbprint, printable, sha1_thumbprint, sha256_fingerprint
from users.models import Interface, Method, SignOnMode, User

from . import throttle
from .proxy import Presented

SIGN_ON = "sign-on"  # who acts in the audit log when nobody signed on acts
# A refusal of a certificate the browser presents by itself, repeated by the same client, is
# recorded (holding tank, audit) at most this often, so that a client cannot turn requests
# into writes. It is remembered in the shared cache, never in a session.
REFUSAL_MEMORY_SECONDS = 10
# At most this many distinct refusals a minute from one address get entries of their own.
REFUSALS_PER_MINUTE = 30


@dataclass
class SignOn:
    """The decision on one sign-on attempt, with every reason (for the audit log, never the user)."""

    presented: Presented
    username: str | None = None
    interface: str = Interface.HTTPS
    source_address: str | None = None
    user: User | None = None
    method: str | None = None
    rule: str | None = None
    reasons: list[str] = field(default_factory=list)
    verdict: trust.Verdict | None = None
    # The certificate authenticated this user, whose mode also wants the password.
    password_needed_for: User | None = None
    # The user the attempt was about (named, or found by the certificate), signed on or not.
    identified: User | None = None
    # Password attempts paused (too many failures): seconds until one may be tried again.
    retry_after: int | None = None

    @property
    def ok(self) -> bool:
        return self.user is not None


def sign_on(
    presented: Presented,
    *,
    username: str | None = None,
    password: str | None = None,
    interface: str = Interface.HTTPS,
    source_address: str | None = None,
) -> SignOn:
    """Decide a sign-on attempt by the user's mode for the interface, and record it.

    Without a username the certificate alone must identify the user (the sign-on a browser
    does by itself).
    """
    decision = decide(
        presented, username=username, password=password, interface=interface, source_address=source_address
    )
    record(decision)
    return decision


def decide(
    presented: Presented, *, username=None, password=None, interface=Interface.HTTPS, source_address=None
) -> SignOn:
    """The decision alone, recorded by nobody (``record`` does that)."""
    decision = SignOn(presented, username, interface, source_address)
    if password:
        decision.retry_after = throttle.retry_after(username, source_address)
        if decision.retry_after:
            decision.reasons.append(
                f"Too many failed passwords for '{username}' or from {source_address or 'this address'}: password "
                f"sign-on is paused for {decision.retry_after} more seconds."
            )
            return decision
    candidates = {}
    if presented.cert is not None:
        # The proxy's failure is final (and nothing of it is cached); its success never is: the
        # app judges for itself.
        failed = None
        if presented.proxy_failure:
            failed = trust.Connection(False, f"The front proxy refused the certificate: {presented.proxy_failure}.", ())
        decision.verdict, candidates = verdicts.judge_with_candidates(
            presented.cert, presented.chain, username, connection=failed
        )
        decision.reasons.append(f"Certificate: {decision.verdict.category_text}.")
        decision.reasons.extend([decision.verdict.connection.reason, *decision.verdict.authentication.reasons])
    by_certificate = None
    if decision.verdict is not None and decision.verdict.category == trust.AUTHENTICATES:
        by_certificate = candidates.get(decision.verdict.authentication.user)
    if username:
        user = next(iter(candidates.values()), None) if presented.cert is not None else User.objects.find(username)
    else:
        user = by_certificate
    if user is None:
        if password:
            # Spend the time a real check takes, so that refusals do not tell which usernames exist.
            User().set_password(password)
            throttle.note_failure(username, source_address)
        decision.reasons.append(f"There is no user '{username}'." if username else "No user was identified.")
        return decision
    decision.identified = user
    _apply_mode(decision, user, cert_ok=by_certificate is not None and by_certificate.pk == user.pk, password=password)
    return decision


def _apply_mode(decision: SignOn, user: User, *, cert_ok: bool, password: str | None) -> None:
    mode = user.sign_on_mode(decision.interface)
    password_ok = bool(password) and user.check_password(password)
    if password and not password_ok:
        throttle.note_failure(decision.username, decision.source_address)
        decision.reasons.append("The password is wrong.")
        return
    if password_ok:
        throttle.forget(decision.username)
    if not user.is_active:
        decision.reasons.append(f"User '{user.username}' is inactive.")
        return
    if cert_ok and password_ok and Method.BOTH in mode.methods:
        method = Method.BOTH
    elif cert_ok and Method.CERTIFICATE in mode.methods:
        method = Method.CERTIFICATE
    elif password_ok and Method.PASSWORD in mode.methods:
        method = Method.PASSWORD
    else:
        label = Interface(decision.interface).label
        if cert_ok and mode == SignOnMode.CERT_AND_PASSWORD:
            decision.password_needed_for = user
            decision.reasons.append(f"{user.username}'s {label} mode also requires the password.")
        elif cert_ok and mode == SignOnMode.PASSWORD:
            decision.reasons.append(f"{user.username}'s {label} mode is password only; certificates play no part.")
        elif password_ok:
            decision.reasons.append(f"{user.username}'s {label} mode ({mode}) requires a client certificate.")
        elif not password and not cert_ok:
            decision.reasons.append("Neither a certificate that authenticates the user nor a password was given.")
        return
    decision.user, decision.method = user, str(method)
    decision.rule = decision.verdict.authentication.rule if method != Method.PASSWORD else None


def still_signed_on(user, method: str, certificate: str | None, presented: Presented, interface=Interface.HTTPS):
    """Why a session may no longer continue, or None if it may.

    ``method`` is how the session was signed on and ``certificate`` the SHA-256 of the
    certificate it was signed on with. A session signed on by certificate lasts only while
    that certificate is presented and keeps authenticating the same user; any session ends
    when the user's mode stops allowing the way it was signed on.
    """
    if method != Method.PASSWORD:
        if presented.cert is None:
            return "the certificate is no longer presented"
        if sha256_fingerprint(presented.cert) != certificate:
            return "another certificate is presented"
    if not user.is_active:
        return f"user '{user.username}' is inactive"
    if method not in user.sign_on_mode(interface).methods:
        return f"{user.username}'s sign-on mode no longer allows signing on by {method}"
    if method == Method.PASSWORD:
        return None
    verdict = verdicts.judge(presented.cert, presented.chain, username=user.username)
    if verdict.category != trust.AUTHENTICATES:
        return "the certificate no longer authenticates the user: " + " ".join(verdict.authentication.reasons)
    return None


# --- recording ---------------------------------------------------------------------------------


def one_commit():
    """A transaction for a decision's records and the session it starts.

    On PostgreSQL they share one commit (one WAL flush instead of three). SQLite serialises
    writers and backs off by sleeping, so there short separate writes are faster.
    """
    return contextlib.nullcontext() if connection.vendor == "sqlite" else transaction.atomic()


def record(decision: SignOn, *, automatic: bool = False) -> None:
    """Audit a decision with its full reasons; a certificate that connects but does not
    authenticate goes to the holding tank.

    ``automatic`` marks an attempt the browser makes by itself on every request: a refusal
    repeated by the same client within ``REFUSAL_MEMORY_SECONDS`` is not recorded again.
    """
    if automatic and not decision.ok and not cache.add(_refusal_key(decision), 1, REFUSAL_MEMORY_SECONDS):
        return
    presented = decision.presented
    if decision.verdict is not None and not decision.ok and decision.password_needed_for is None:
        record_presentation(
            decision.verdict, presented.cert, decision.username, decision.interface, decision.source_address
        )
    _audit(decision)


def _refusal_key(decision: SignOn) -> str:
    """A refusal is remembered for this certificate with this chain, from this address."""
    presented = decision.presented
    fingerprints = "+".join(sha256_fingerprint(c) for c in (presented.cert, *presented.chain) if c is not None)
    digest = hashlib.sha256(fingerprints.encode()).hexdigest()
    return f"mft:refused:{digest}:{decision.source_address}"


def _refusal_budget(source_address) -> bool:
    key = f"mft:refusals:{source_address}"
    cache.add(key, 0, 60)
    try:
        return cache.incr(key) <= REFUSALS_PER_MINUTE
    except ValueError:  # expired between add and incr
        return True


def _audit(decision: SignOn) -> None:
    presented, username, source_address = decision.presented, decision.username, decision.source_address
    cert = presented.cert
    detail = {
        "interface": decision.interface,
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
    label = Interface(decision.interface).label
    if decision.ok:
        how = decision.method + (f" ({decision.rule})" if decision.rule else "")
        summary = f"{decision.user.username} signed on over {label} by {how}."
        action = "signon.success"
    else:
        who = f"'{username}'" if username else "an unnamed user"
        summary = f"Sign-on over {label} refused for {who}: " + (decision.reasons[-1] if decision.reasons else "")
        action = "signon.throttled" if decision.retry_after else "signon.refused"
    target = decision.user or decision.identified
    fold_key = (action, target.pk if target else None, detail["sha256"], decision.method, username, source_address)
    if not decision.ok and not _refusal_budget(source_address):
        # One address producing many distinct refusals (random usernames, freshly made
        # certificates) gets one entry a minute that counts them, not a row each.
        fold_key, action = ("signon.refused", "many", source_address), "signon.refused"
        summary = f"Many sign-on refusals over {label} from {source_address or 'an unknown address'}; counted here."
    AuditEvent.objects.record_repeatable(
        fold_key,
        SIGN_ON,
        action,
        summary[:1000],
        # Kept, so that the audit log can open the doctor on exactly what was presented.
        on_new=lambda: keep_certificates(cert, *presented.chain) if cert is not None else None,
        target=target,
        detail=detail,
        source_address=source_address,
    )


def record_session_end(user, reason: str, source_address=None) -> None:
    AuditEvent.objects.record(
        SIGN_ON,
        "signon.ended",
        f"Ended {user.username}'s session: {reason}.",
        target=user,
        source_address=source_address,
    )


def record_ignored_certificate_header(address: str | None, why: str) -> None:
    """A certificate header that did not come from the proxy: one entry a minute (the log has each)."""
    if cache.add("mft:untrusted-header", 1, 60):
        AuditEvent.objects.record(
            SIGN_ON,
            "signon.untrusted_header",
            f"Ignored a client certificate header sent by {address or 'a unix socket'} {why}.",
            source_address=address or None,
        )
