"""Opaque cursors over the keyset pages of the use cases (``audit.paging``): a cursor carries the
key of the page's edge, so a deep page costs what the first does."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json

from django.utils import timezone
from rest_framework import serializers
from rest_framework.utils.urls import replace_query_param

INVALID = "This cursor is not valid; start again from the first page (without a cursor)."


def encode(direction: str, key: tuple) -> str:
    values = [v.isoformat() if isinstance(v, dt.datetime) else v for v in key]
    return base64.urlsafe_b64encode(json.dumps([direction, values]).encode()).decode().rstrip("=")


def decode(text: str, kinds: tuple[type, ...]) -> tuple[str, tuple]:
    """(direction, key) from a cursor whose key holds values of ``kinds``; a 400 otherwise."""
    try:
        direction, values = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        if direction not in ("after", "before") or len(values) != len(kinds):
            raise ValueError
        key = []
        for kind, value in zip(kinds, values, strict=True):
            if kind is dt.datetime:
                value = dt.datetime.fromisoformat(value)
                if value.tzinfo is None:
                    raise ValueError
            elif not isinstance(value, kind) or isinstance(value, bool):
                raise ValueError
            key.append(value)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, OverflowError):
        raise serializers.ValidationError({"cursor": [INVALID]}) from None
    return direction, tuple(key)


def bounds(request, kinds) -> dict:
    """``after``/``before`` for a keyset page from the request's ``cursor``."""
    text = request.query_params.get("cursor")
    if not text:
        return {"after": None, "before": None}
    if len(text) > 2000:
        raise serializers.ValidationError({"cursor": [INVALID]})
    direction, key = decode(text, kinds)
    return {"after": key if direction == "after" else None, "before": key if direction == "before" else None}


def links(request, page) -> dict:
    url = request.build_absolute_uri()

    def link(direction, key):
        return replace_query_param(url, "cursor", encode(direction, key)) if key is not None else None

    return {"next": link("after", page.next_key), "previous": link("before", page.previous_key)}


def polled(request, found, *, after_id: int, limit: int, settled: str, settle: dt.timedelta) -> tuple[list, str]:
    """For a poller: up to ``limit`` rows after the one with ``after_id``, oldest first, of those
    whose ``settled`` time is ``settle`` old (so a row committed late is not skipped), and the
    address to poll next (always given: it carries the last id seen)."""
    rows = list(found.filter(pk__gt=after_id, **{f"{settled}__lte": timezone.now() - settle}).order_by("id")[:limit])
    last = rows[-1].pk if rows else after_id
    return rows, replace_query_param(request.build_absolute_uri(), "after_id", last)
