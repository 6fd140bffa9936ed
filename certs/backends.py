"""The authentication backend: maps a presented certificate (and a password) to a user by policy."""

from django.contrib.auth.backends import ModelBackend

from users.access import client_address
from users.models import Interface

from . import flows
from .proxy import NOTHING


class SignOnBackend(ModelBackend):
    """Signs users on by their HTTPS sign-on mode: certificate, password, or both.

    The certificate comes from ``request.client_certificate``, which
    ``ClientCertificateMiddleware`` sets from what the front proxy forwarded. Called with
    a username (the sign-on form) or without (a browser presenting its certificate). The
    decision, with all its reasons, is left on ``request.sign_on`` for the views; with
    ``record_later`` the caller records it (``flows.record_sign_on``).
    """

    interface = Interface.HTTPS

    def authenticate(
        self, request, username=None, password=None, client_certificate=None, record_later=False, **kwargs
    ):
        presented = client_certificate or getattr(request, "client_certificate", None) or NOTHING
        if username is not None:
            username = self.clean_username(username)
            if not username:
                username = None
        if username is None and presented.cert is None:
            return None
        decision = flows.sign_on(
            presented,
            username=username,
            password=password or None,
            interface=self.interface,
            source_address=client_address(request) if request is not None else None,
            record=not record_later,
        )
        if request is not None:
            request.sign_on = decision
        return decision.user

    def clean_username(self, username: str) -> str:
        """By default, return the username with surrounding white space removed."""
        return (username or "").strip()

    def user_can_authenticate(self, user):
        return getattr(user, "is_active", False)
