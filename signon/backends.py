"""The authentication backend: the backend half of the pair, as Django's RemoteUserBackend."""

from django.contrib.auth.backends import ModelBackend

from users.models import Interface
from users.pages import client_address

from . import flows
from .proxy import NOTHING


class SignOnBackend(ModelBackend):
    """Signs users on by their sign-on mode for ``interface``: certificate, password, or both.

    ``authenticate()`` takes a username and password (either may be missing) and the
    certificate the request presented (``request.client_certificate``, which
    ``ClientCertificateMiddleware`` sets), and returns the user that ``flows.sign_on``
    decides on, or None. The middleware and the sign-in form call ``flows`` themselves,
    because the session they start remembers how it was signed on; anything else that calls
    Django's ``authenticate()`` gets the same decision, recorded the same way.
    """

    interface = Interface.HTTPS

    def authenticate(self, request, username=None, password=None, client_certificate=None, **kwargs):
        presented = client_certificate or getattr(request, "client_certificate", None) or NOTHING
        username = self.clean_username(username) if username is not None else None
        if not username and presented.cert is None:
            return None
        decision = flows.sign_on(
            presented,
            username=username or None,
            password=password or None,
            interface=self.interface,
            source_address=client_address(request) if request is not None else None,
        )
        return decision.user

    def clean_username(self, username: str) -> str:
        """By default, return the username with surrounding white space removed."""
        return (username or "").strip()

    def user_can_authenticate(self, user):
        return getattr(user, "is_active", False)
