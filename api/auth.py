"""Who calls the API, and what they may do.

Three ways to be signed on, tried in this order:

- a personal API token (``Authorization: Bearer mft_...``), acting with its user's rights;
- the client certificate, signed on by ``ClientCertificateMiddleware`` for this request alone,
  by the same rules and the user's HTTPS sign-on mode as every page (``signon.flows``);
- a browser's session (the docs page), with Django's CSRF check on every write.

Nothing here creates a session or a CSRF cookie.
"""

from django.core.cache import cache
from rest_framework import authentication, exceptions, permissions

from certs.x509 import name_key
from signon import session
from signon.proxy import NOTHING
from users import tokens
from users.pages import client_address

from .problems import Problem

# Refused tokens from one address within a minute before further tokens from it are refused unread.
TOKEN_FAILURES_PER_MINUTE = 20


class TokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer mft_...``: the token's user, while the token is live and the user active.

    Each use is recorded in the audit log (repeats counted), each refusal with its reason.
    """

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != "bearer" or not raw.strip():
            raise exceptions.AuthenticationFailed(
                "Send the API token as 'Authorization: Bearer mft_...'; no other scheme is accepted."
            )
        address = client_address(request._request)
        failures_key = f"mft:api-token-failures:{address}"
        if (cache.get(failures_key) or 0) >= TOKEN_FAILURES_PER_MINUTE:
            raise Problem(
                429,
                "Too many refused API tokens from this address; wait a minute before trying again.",
                retry_after=60,
            )
        try:
            token = tokens.check(raw.strip())
        except tokens.TokenRefused as refused:
            tokens.record_refusal(str(refused), request.method, request.path, address)
            cache.add(failures_key, 0, 60)
            try:
                cache.incr(failures_key)
            except ValueError:  # expired between add and incr
                pass
            raise exceptions.AuthenticationFailed(str(refused)) from None
        by_certificate = getattr(request._request, session.REQUEST_ATTRIBUTE, None)
        if by_certificate is not None and request._request.user.pk != token.user_id:
            raise exceptions.AuthenticationFailed(
                "The API token and the client certificate sign on different users; send one or the other."
            )
        tokens.record_use(token, request.method, request.path, address)
        return token.user, token

    def authenticate_header(self, request):
        return 'Bearer realm="mft"'


class CertificateAuthentication(authentication.BaseAuthentication):
    """The user the client certificate signed on for this request (see ``signon.session.start``)."""

    def authenticate(self, request):
        django_request = request._request
        signed_on = getattr(django_request, session.REQUEST_ATTRIBUTE, None)
        if signed_on is not None:
            return django_request.user, signed_on
        presented = getattr(django_request, "client_certificate", NOTHING)
        if presented.cert is not None and not django_request.user.is_authenticated:
            # The reasons are in the audit log; a caller learns no more than a sign-in page tells.
            raise exceptions.AuthenticationFailed(
                "The client certificate presented signs nobody on here; an administrator can see why in the audit log."
            )
        return None


class SessionAuthentication(authentication.SessionAuthentication):
    """A browser signed in to the pages (the docs page's "Try it out"): CSRF is checked on writes."""


class IsAdministrator(permissions.BasePermission):
    message = "This is for administrators."

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and user.is_active and user.is_admin)


class IsAdministratorOrSelf(permissions.BasePermission):
    """Administrators; and an end user reading what concerns themselves (``username`` in the URL)."""

    message = "End users may read only their own record and certificates; the rest is for administrators."

    def has_permission(self, request, view):
        user = request.user
        if not (user and user.is_authenticated and user.is_active):
            return False
        if user.is_admin:
            return True
        own = name_key(view.kwargs.get("username", "")) == user.username_key
        return own and request.method in permissions.SAFE_METHODS


class Anyone(permissions.AllowAny):
    """Anyone, signed on or not."""
