"""The forward-auth gate: this app's sign-on rules in front of another service behind the same proxy.

nginx ``auth_request``, Traefik ``ForwardAuth`` and Envoy ``ext_authz`` ask ``/auth/forward``
(Envoy appends the original path, and may use the original method) before serving a request,
with the client-certificate headers the proxy sets for this app and, where the user's mode
needs it, HTTP Basic credentials. The answer:

- 200 with ``X-MFT-User``, ``X-MFT-Method`` and ``X-MFT-Rule`` when the certificate (with the
  username and password, if given) signs someone on under their HTTPS policy;
- 401 with a Basic challenge when nothing was presented, or when the certificate's user must
  also give a password;
- 403 for every other refusal, which says no more than the sign-in page does.

No session is read or made: every request is decided afresh, through ``flows`` (the same
decision, audit entries and holding tank as signing on), so a change applies at once.
"""

from __future__ import annotations

import base64
import binascii

from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from users.pages import client_address

from . import flows

REALM = 'Basic realm="MFT", charset="UTF-8"'
REFUSED = "Sign-on failed. Check your username, your password and your client certificate.\n"


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """(username, password) from an ``Authorization: Basic`` header; None when there is none.

    Raises ValueError when the header is there but is not Basic credentials.
    """
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic" or not value.strip() or len(value) > 4096:
        raise ValueError("not Basic credentials")
    try:
        text = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise ValueError("the Basic credentials are not base64 of UTF-8 text") from None
    username, colon, password = text.partition(":")
    if not colon or not username.strip() or "\x00" in text:
        raise ValueError("the Basic credentials have no username")
    return username.strip(), password


def _answer(status: int, body: str = "", **headers) -> HttpResponse:
    response = HttpResponse(body, status=status, content_type="text/plain; charset=utf-8")
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


@csrf_exempt  # no session and no state: any method the proxy uses for its question is answered
@never_cache
def forward_auth(request, rest: str = ""):
    presented = request.client_certificate
    try:
        credentials = basic_credentials(request.headers.get("Authorization"))
    except ValueError:
        return _answer(401, REFUSED, WWW_Authenticate=REALM)
    if presented.cert is None and credentials is None:
        return _answer(401, "Present a client certificate.\n", WWW_Authenticate=REALM)
    username, password = credentials or (None, None)
    decision = flows.decide(presented, username=username, password=password or None)
    decision.source_address = client_address(request)
    # Without credentials the proxy asks on every request, as a browser's certificate does.
    flows.record(decision, automatic=credentials is None)
    if decision.ok:
        return _answer(
            200,
            X_MFT_User=decision.user.username,
            X_MFT_Method=decision.method,
            X_MFT_Rule=decision.rule or "",
        )
    if decision.password_needed_for is not None and credentials is None:
        return _answer(401, "Give your password as well.\n", WWW_Authenticate=REALM)
    return _answer(403, REFUSED)
