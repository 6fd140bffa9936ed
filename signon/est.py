"""EST (RFC 7030) for automated clients: the org CA's certificate, and re-enrolment with the
current client certificate.

- ``GET /.well-known/est/cacerts``: the org CA certificate, as a base64 PKCS#7 certs-only
  message (section 4.1).
- ``POST /.well-known/est/simplereenroll``: a base64 PKCS#10 request, authenticated by the
  client certificate being renewed (section 4.2.2). The certificate must sign its user on by
  its thumbprint; the renewal follows the org's self-service setting, exactly as on the user's
  page (``certs.self_service``): automatic answers 200 with the new certificate; on request
  answers 202 with Retry-After while it waits for an administrator, and the same request sent
  again afterwards gets the certificate once it was accepted.
- ``POST /.well-known/est/simpleenroll``: a first enrolment that an administrator approved
  (``certs enrol``), authenticated by HTTP Basic with the username and the enrolment's one-time
  secret (section 3.2.3); the certificate's thumbprint lands on the profile.

No session is read or made; each request is decided afresh by ``flows`` (audit, holding tank).
Every refusal is a short text saying why.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7
from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from certs import issuing, self_service
from certs.flows import FlowError
from certs.models import Credential, CredentialKind, OrgCA, TankEntry
from certs.x509 import key_sha256, sha1_thumbprint, sha256_fingerprint
from users.models import Method
from users.pages import client_address

from . import flows
from .gate import REALM, basic_credentials
from .session import How

# How long an EST client waits before asking again for a renewal awaiting approval.
RETRY_AFTER_SECONDS = 3600
# Requests are read up to this size (base64 of at most issuing.MAX_CSR_BYTES).
MAX_BODY = issuing.MAX_CSR_BYTES * 2


def _text(status: int, text: str, **headers) -> HttpResponse:
    response = HttpResponse(text.rstrip("\n") + "\n", status=status, content_type="text/plain; charset=utf-8")
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def _certs_only(certificates) -> HttpResponse:
    der = pkcs7.serialize_certificates(list(certificates), serialization.Encoding.DER)
    response = HttpResponse(base64.encodebytes(der), content_type="application/pkcs7-mime; smime-type=certs-only")
    response["Content-Transfer-Encoding"] = "base64"
    return response


@never_cache
@require_GET
def cacerts(request):
    org_ca = OrgCA.active()
    if org_ca is None:
        return _text(404, "There is no org CA yet, so there is nothing to enrol with.")
    return _certs_only([org_ca.certificate.to_x509()])


def _csr_body(request) -> bytes:
    """The request body as DER (or PEM): base64 per RFC 7030 4.2.1. Raises ValueError in words."""
    body = request.body
    if len(body) > MAX_BODY:
        raise ValueError("The request is too large for a certificate signing request.")
    if b"-----BEGIN" in body:
        return body
    try:
        return base64.b64decode(b"".join(body.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(
            "The body must be a base64-encoded PKCS#10 certificate signing request (RFC 7030 4.2.1)."
        ) from None


@csrf_exempt  # no session: authenticated by the enrolment's one-time secret (HTTP Basic)
@never_cache
@require_POST
def simpleenroll(request):
    """A first enrolment that an administrator approved (``manage.py certs enrol USERNAME``):
    HTTP Basic with the username and the enrolment's one-time secret."""
    try:
        credentials = basic_credentials(request.headers.get("Authorization"))
    except ValueError:
        credentials = None
    if credentials is None:
        return _text(
            401,
            "Enrolment is authenticated by HTTP Basic: the username and the one-time secret of the enrolment "
            "an administrator approved.",
            WWW_Authenticate=REALM,
        )
    try:
        csr = _csr_body(request)
    except ValueError as exc:
        return _text(400, str(exc))
    try:
        row = self_service.enrol(*credentials, csr, source_address=client_address(request))
    except FlowError as exc:
        status = 401 if str(exc) == self_service.REFUSED_ENROLMENT else 400
        headers = {"WWW_Authenticate": REALM} if status == 401 else {}
        return _text(status, str(exc), **headers)
    return _certs_only([row.to_x509()])


@csrf_exempt  # no session: authenticated by the client certificate alone
@never_cache
@require_POST
def simplereenroll(request):
    presented = request.client_certificate
    if presented.cert is None:
        return _text(401, "Re-enrolment is authenticated by the current client certificate: present it.")
    decision = flows.decide(presented, source_address=client_address(request))
    flows.record(decision)
    if not decision.ok or decision.method == Method.PASSWORD:
        return _text(403, "This certificate does not sign anyone on, so it cannot be re-enrolled.")
    user = decision.user
    old = Credential.objects.filter(
        user=user, kind=CredentialKind.THUMBPRINT, key=sha1_thumbprint(presented.cert)
    ).first()
    if old is None:
        return _text(403, "Only a certificate on your profile by its thumbprint can be re-enrolled.")
    try:
        der = _csr_body(request)
    except ValueError as exc:
        return _text(400, str(exc))
    try:
        key = key_sha256(issuing.read_csr(der).public_key())
    except issuing.IssuingError as exc:
        return _text(400, str(exc))
    # The same request again: the certificate made for it, or still waiting.
    done = Credential.objects.filter(user=user, replaces=old, certificate__key_sha256=key).first()
    if done is not None:
        return _certs_only([done.certificate.to_x509()])
    if TankEntry.objects.filter(user=user, renewal_of=old, certificate__key_sha256=key).exists():
        return _text(202, "The renewal waits for an administrator's approval.", Retry_After=str(RETRY_AFTER_SECONDS))
    how = How(decision.method, decision.rule, sha256_fingerprint(presented.cert))
    problem = self_service.refusal(old, how)
    if problem:
        return _text(403, problem)
    try:
        renewed = self_service.renew(user, old.pk, how, csr=der, source_address=client_address(request))
    except FlowError as exc:
        return _text(400, str(exc))
    if renewed.waiting:
        return _text(202, renewed.message, Retry_After=str(RETRY_AFTER_SECONDS))
    return _certs_only([renewed.certificate.to_x509()])
