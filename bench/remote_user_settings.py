"""The app's settings with the client-certificate pair swapped for Django's remote-user pair."""

from mft.settings import *  # noqa: F403
from mft.settings import MIDDLEWARE

_OURS = "signon.middleware.ClientCertificateMiddleware"
if _OURS not in MIDDLEWARE:
    raise SystemExit(f"{_OURS} is not in MIDDLEWARE: update the benchmark's swap")
MIDDLEWARE = ["bench.remote_user.HeaderRemoteUserMiddleware" if m == _OURS else m for m in MIDDLEWARE]
AUTHENTICATION_BACKENDS = ["bench.remote_user.ExistingRemoteUserBackend"]
