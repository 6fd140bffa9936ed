"""The app's settings with the client-certificate pair swapped for Django's remote-user pair."""

from mft.settings import *  # noqa: F403
from mft.settings import MIDDLEWARE

MIDDLEWARE = [
    "bench.remote_user.HeaderRemoteUserMiddleware" if m == "certs.middleware.ClientCertificateMiddleware" else m
    for m in MIDDLEWARE
]
AUTHENTICATION_BACKENDS = ["bench.remote_user.ExistingRemoteUserBackend"]
