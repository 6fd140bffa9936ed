"""The baseline the sign-on benchmark compares with: Django's own RemoteUserMiddleware and
RemoteUserBackend, trusting a username header (what a proxy that authenticates users sends)."""

from django.contrib.auth.backends import RemoteUserBackend
from django.contrib.auth.middleware import RemoteUserMiddleware


class HeaderRemoteUserMiddleware(RemoteUserMiddleware):
    header = "HTTP_X_REMOTE_USER"


class ExistingRemoteUserBackend(RemoteUserBackend):
    create_unknown_user = False
