"""The session side of sign-on: starting and ending a session, and what it remembers.

A session remembers how it was signed on (``How``), read in one place with one default; a
certificate the user signed out of (not used again by itself in that session); and a
certificate that authenticated a user whose mode also wants the password.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import auth
from django.contrib.auth.models import AnonymousUser

from certs.trust import RULE_FOR_THE_USER
from certs.x509 import sha256_fingerprint
from users.models import Method
from users.pages import client_address

from . import flows

HOW_KEY = "mft_signon"
SIGNED_OUT_KEY = "mft_signed_out_certificate"
PASSWORD_NEEDED_KEY = "mft_password_needed"
BACKEND = "signon.backends.SignOnBackend"


@dataclass(frozen=True)
class How:
    """How a session was signed on. A session without the record (none is started otherwise)
    counts as signed on by password, the way that proves least."""

    method: str = Method.PASSWORD
    rule: str | None = None
    certificate: str | None = None  # the SHA-256 of the certificate it was signed on with

    @property
    def method_text(self) -> str:
        return Method(self.method).label if self.method in Method.values else self.method


# A request signed on without a session (see ``start``) carries how, for itself alone, here.
REQUEST_ATTRIBUTE = "_mft_signed_on"


def how(request) -> How:
    stateless = getattr(request, REQUEST_ATTRIBUTE, None)
    if stateless is not None:
        return stateless
    info = request.session.get(HOW_KEY) or {}
    return How(info.get("method") or Method.PASSWORD, info.get("rule"), info.get("cert"))


def in_words(request) -> dict:
    """How the current session was signed on, in words for the person: ``signed_on_by`` ("your
    client certificate") and ``signed_on_rule`` ("its thumbprint is on your profile")."""
    if not request.user.is_authenticated:
        return {}
    signed_on = how(request)
    rule = RULE_FOR_THE_USER.get(signed_on.rule) if signed_on.rule else None
    return {"signed_on_by": signed_on.method_text, "signed_on_rule": rule}


def needs_session(request) -> bool:
    """By default, every request but the API's: a script calling the API with its certificate
    signs on afresh with each request, and a session row per request would only pile up."""
    return not request.path.startswith("/api/")


def start(request, decision: flows.SignOn) -> None:
    """Sign the decided user on: a new session (Django's login) that remembers how, or, for a
    request that needs no session, this request alone."""
    user = decision.user
    uses_certificate = decision.method != Method.PASSWORD and decision.presented.cert is not None
    signed_on = How(
        decision.method, decision.rule, sha256_fingerprint(decision.presented.cert) if uses_certificate else None
    )
    if uses_certificate and not needs_session(request):
        request.user = user
        setattr(request, REQUEST_ATTRIBUTE, signed_on)
        return
    auth.login(request, user, backend=BACKEND)
    request.user = user
    request.session[HOW_KEY] = {"method": signed_on.method, "rule": signed_on.rule, "cert": signed_on.certificate}
    for key in (SIGNED_OUT_KEY, PASSWORD_NEEDED_KEY):
        request.session.pop(key, None)


def end(request, reason: str) -> None:
    """End the session of a user who may no longer continue, and say why in the audit log."""
    flows.record_session_end(request.user, reason, client_address(request))
    auth.logout(request)
    request.user = AnonymousUser()


def sign_out(request, cert) -> None:
    """Sign out, and do not sign straight back in with the certificate the browser keeps sending."""
    auth.logout(request)
    if cert is not None:
        request.session[SIGNED_OUT_KEY] = sha256_fingerprint(cert)


def signed_out_of(request, cert) -> bool:
    return cert is not None and request.session.get(SIGNED_OUT_KEY) == sha256_fingerprint(cert)


def forget_sign_out(request) -> None:
    request.session.pop(SIGNED_OUT_KEY, None)


def wait_for_password(request, decision: flows.SignOn) -> None:
    """The certificate authenticated a user whose mode also wants the password: the sign-in page
    asks for it, with the username filled in."""
    request.session[PASSWORD_NEEDED_KEY] = {
        "cert": sha256_fingerprint(decision.presented.cert),
        "username": decision.password_needed_for.username,
    }


def password_needed(request, cert) -> str | None:
    """The username waiting for its password with this certificate, if any."""
    waiting = request.session.get(PASSWORD_NEEDED_KEY)
    if cert is None or not waiting or waiting.get("cert") != sha256_fingerprint(cert):
        return None
    return waiting.get("username")
