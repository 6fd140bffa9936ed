"""``Idempotency-Key`` on writes that create things: a retried script creates nothing twice.

The first request with a key runs and its answer is kept for a day; the same request again
with the same key gets that answer (``Idempotent-Replayed: true``) without running. A key is
the sending user's own. Reusing it for another request is refused (422); sending it again
while the first is still running is refused (409, retry shortly). Only answers that succeeded
are kept, so a retry after a refusal runs again.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json

from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.response import Response

from .models import IdempotentRequest
from .problems import Problem

HEADER = "Idempotency-Key"
KEEP = dt.timedelta(days=1)
# A request still marked running after this long died with its worker: its key may be used again.
ABANDONED = dt.timedelta(minutes=5)


def _key(request) -> str | None:
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not 1 <= len(key) <= 255 or not all(33 <= ord(c) <= 126 for c in key):
        raise Problem(
            400,
            "The Idempotency-Key header must be 1 to 255 visible ASCII characters, e.g. a UUID.",
            errors=[{"field": HEADER, "pointer": None, "detail": "Not a usable key."}],
        )
    return key


def _storable(path: str) -> str:
    """A path as it can be stored (PostgreSQL keeps no NUL character), within its column."""
    return path.replace("\x00", "\\x00")[:500]


def _fingerprint(request) -> str:
    def plain(value):
        if hasattr(value, "read"):  # an uploaded file: its content counts
            content = value.read()
            value.seek(0)
            return "sha256:" + hashlib.sha256(content).hexdigest()
        return value

    data = request.data
    if hasattr(data, "getlist"):
        body = {name: [plain(v) for v in data.getlist(name)] for name in data}
        body.update({name: [plain(f) for f in request.FILES.getlist(name)] for name in request.FILES})
    else:
        body = data
    text = json.dumps([request.method, request.path, body], sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _claim(request, key: str, fingerprint: str) -> IdempotentRequest | Response:
    """Mark the key as running for this request, or answer from what it already did."""
    now = timezone.now()
    IdempotentRequest.objects.filter(created_at__lt=now - KEEP).delete()
    for _ in range(2):
        try:
            with transaction.atomic():
                return IdempotentRequest.objects.create(
                    user=request.user,
                    key=key,
                    method=request.method,
                    path=_storable(request.path),
                    fingerprint=fingerprint,
                )
        except IntegrityError:
            earlier = IdempotentRequest.objects.filter(user=request.user, key=key).first()
        if earlier is None:
            continue  # expired a moment ago
        if earlier.fingerprint != fingerprint:
            raise Problem(
                422,
                f"This Idempotency-Key was used for another request ({earlier.method} {earlier.path}) in the last "
                "day; send a new key with a new request.",
                slug="idempotency-key-reused",
            )
        if earlier.status is not None:
            headers = {"Idempotent-Replayed": "true"}
            if earlier.location:
                headers["Location"] = earlier.location
            return Response(earlier.body, status=earlier.status, headers=headers)
        if earlier.created_at < now - ABANDONED:
            IdempotentRequest.objects.filter(pk=earlier.pk, status__isnull=True).delete()
            continue
        raise Problem(
            409,
            "A request with this Idempotency-Key is still running; retry in a moment to get its answer.",
            slug="idempotency-key-in-use",
            headers={"Retry-After": "1"},
        )
    raise Problem(409, "This Idempotency-Key is busy; retry in a moment.", slug="idempotency-key-in-use")


def idempotent(method):
    """A view method that accepts ``Idempotency-Key``. The view may set ``response.replay_data``
    to what a replay answers instead of the body (the PKCS#12 of a new certificate is given once)."""

    @functools.wraps(method)
    def wrapper(view, request, *args, **kwargs):
        key = _key(request)
        if key is None:
            return method(view, request, *args, **kwargs)
        claimed = _claim(request, key, _fingerprint(request))
        if isinstance(claimed, Response):
            return claimed
        try:
            response = method(view, request, *args, **kwargs)
        except BaseException:
            claimed.delete()
            raise
        if 200 <= response.status_code < 300:
            claimed.status = response.status_code
            claimed.body = getattr(response, "replay_data", response.data)
            claimed.location = response.get("Location", "")[:500]
            claimed.save(update_fields=["status", "body", "location"])
        else:
            claimed.delete()
        return response

    return wrapper
