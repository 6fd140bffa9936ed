"""Errors as problem documents (RFC 9457, ``application/problem+json``): a title, one sentence a
person understands, and for bad input the fields at fault.

Views let the use cases' own exceptions through; they are turned into problems here, so a
refusal reads the same whichever operation met it:

- 400: the request cannot be read, or a field is not valid (the pages' forms judge it);
- 401, 403: not signed on, not allowed; 404: nothing at that address;
- 409: an entry other users' sign-on would share (send ``allow_shared``), or a retry of a
  request still running;
- 413: the body is too large; 422: the use case refuses (the reason is in ``detail``);
- 429: too many requests, with ``Retry-After``. Anything else is a 500 whose detail says only
  that the log has the details.
"""

from __future__ import annotations

import logging
import math

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, parsers, status
from rest_framework.response import Response

from certs.flows import FlowError, SharedEntry
from certs.issuing import IssuingError
from certs.loading import CertificateLoadError
from certs.x509 import ThumbprintError
from users.models import NoSuchUser
from users.tokens import TokenRefused

logger = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"
TITLES = {
    400: "Invalid request",
    401: "Not signed on",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Refused",
    429: "Too many requests",
    500: "Internal error",
}
SLUGS = {
    400: "invalid-request",
    401: "not-signed-on",
    403: "not-allowed",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    409: "conflict",
    413: "too-large",
    415: "unsupported-media-type",
    422: "refused",
    429: "too-many-requests",
    500: "internal-error",
}


class Problem(exceptions.APIException):
    """A refusal of the API's own, with a type of its own and members added to the document."""

    def __init__(self, status_code: int, detail: str, *, slug: str | None = None, headers=None, **members):
        super().__init__(detail)
        self.status_code = status_code
        self.slug = slug
        self.headers = headers or {}
        self.members = members


class TooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE


def document(status_code: int, detail: str, *, instance=None, slug=None, errors=None, **members) -> dict:
    body = {
        "type": f"urn:mft:problem:{slug or SLUGS.get(status_code, 'error')}",
        "title": TITLES.get(status_code, "Error"),
        "status": status_code,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = errors
    body.update(members)
    return body


def _field_errors(detail, prefix="") -> list[dict]:
    """DRF's or a form's nested error detail as a flat list of {field, pointer, detail}."""
    found = []
    if isinstance(detail, dict):
        for name, value in detail.items():
            field = None if name in ("non_field_errors", "__all__") else f"{prefix}{name}"
            if isinstance(value, (dict, list)) and any(isinstance(v, (dict, list)) for v in _values(value)):
                found.extend(_field_errors(value, f"{field}." if field else prefix))
                continue
            for message in value if isinstance(value, list) else [value]:
                found.append(
                    {
                        "field": field,
                        "pointer": f"/{field.replace('.', '/')}" if field else None,
                        "detail": str(message),
                    }
                )
    elif isinstance(detail, list):
        for item in detail:
            found.extend(
                _field_errors(item, prefix)
                if isinstance(item, (dict, list))
                else [{"field": prefix.rstrip(".") or None, "pointer": None, "detail": str(item)}]
            )
    else:
        found.append({"field": prefix.rstrip(".") or None, "pointer": None, "detail": str(detail)})
    return found


def _values(value):
    return value.values() if isinstance(value, dict) else value


def _sentence(errors: list[dict]) -> str:
    parts = [f"{e['field']}: {e['detail']}" if e["field"] else e["detail"] for e in errors]
    return " ".join(parts) or "The request is not valid."


def _convert(exc) -> tuple[int, str, dict]:
    """(status, detail, extra members) for an exception the views let through, or raise it on."""
    if isinstance(exc, Problem):
        return exc.status_code, str(exc.detail), {"slug": exc.slug, **exc.members}
    if isinstance(exc, SharedEntry):
        overlaps = [{"username": o.username, "how": o.how} for o in exc.overlaps]
        detail = f'{exc} Send "allow_shared": true to share it anyway.'
        return 409, detail, {"slug": "shared-entry", "overlaps": overlaps, "allow_shared": False}
    if isinstance(exc, (FlowError, IssuingError)):
        return 422, str(exc), {}
    if isinstance(exc, (ThumbprintError, CertificateLoadError)):
        return 400, str(exc), {}
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
        errors = _field_errors(detail)
        return 422, _sentence(errors), {"errors": errors}
    if isinstance(exc, (NoSuchUser, Http404)):
        return 404, str(exc) or "There is nothing at this address.", {}
    if isinstance(exc, PermissionDenied):
        return 403, str(exc) or "This is for administrators.", {}
    if isinstance(exc, RequestDataTooBig):
        return 413, "The request body is larger than this service accepts.", {}
    if isinstance(exc, exceptions.ValidationError):
        errors = _field_errors(exc.detail)
        return 400, _sentence(errors), {"errors": errors}
    if isinstance(exc, TokenRefused):
        return 401, str(exc), {}
    if isinstance(exc, exceptions.APIException):
        detail = exc.detail
        text = _sentence(_field_errors(detail)) if isinstance(detail, (dict, list)) else str(detail)
        return exc.status_code, text, {}
    raise exc


def exception_handler(exc, context):
    """DRF's exception handler: every refusal as a problem document, never a stack trace."""
    request = context.get("request")
    try:
        status_code, detail, members = _convert(exc)
    except Exception:
        logger.exception("The API failed unexpectedly on %s", getattr(request, "path", "?"))
        status_code, detail, members = 500, "The service failed unexpectedly; the details are in its log.", {}
    headers = {}
    if status_code == 429:
        wait = exc.wait if isinstance(exc, exceptions.Throttled) else members.get("retry_after")
        seconds = max(1, math.ceil(wait or 1))
        headers["Retry-After"] = str(seconds)
        members["retry_after"] = seconds
        if isinstance(exc, exceptions.Throttled):
            detail = f"Too many requests; try again in {seconds} second{'s' if seconds != 1 else ''}."
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if isinstance(exc, Problem):
        headers.update(exc.headers)
    if isinstance(exc, exceptions.NotAuthenticated):
        detail = "Sign on with a client certificate, or send an API token as 'Authorization: Bearer mft_...'."
    # Imported here: rest_framework.views imports the authentication classes, which use this module.
    from rest_framework.views import set_rollback

    set_rollback()
    body = document(status_code, detail, instance=getattr(request, "path", None), **members)
    return Response(body, status=status_code, headers=headers, content_type=MEDIA_TYPE)


def not_found(request, *args, **kwargs):
    """Any address under the API that names no operation."""
    body = document(404, f"There is no API operation at {request.path}; see /api/v1/docs/.", instance=request.path)
    return JsonResponse(body, status=404, content_type=MEDIA_TYPE)


class JSONParser(parsers.JSONParser):
    """JSON bodies are objects; nesting deep enough to exhaust the parser is bad input too."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("The JSON body is nested too deeply.") from None
        if not isinstance(data, dict):
            raise exceptions.ParseError('The JSON body must be an object, such as {"name": "value"}.')
        return data
