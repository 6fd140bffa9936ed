"""Reading the audit log: filters and pages, for the audit log page and the command line."""

import datetime as dt

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.utils import timezone

from .models import AuditEvent
from .paging import PAGE_SIZE, Page, keyset_page


def actions() -> list[str]:
    """The distinct actions present in the audit log, for a filter.

    One DISTINCT over the indexed ``action`` column: an index-only scan on PostgreSQL.
    """
    return list(AuditEvent.objects.order_by("action").values_list("action", flat=True).distinct())


def events(*, username="", action="", date_from=None, date_to=None) -> QuerySet:
    """Audit events, filtered: ``username`` matches the actor or the target user; the dates
    are inclusive days in the configured time zone."""
    found = AuditEvent.objects.select_related("target_user")
    username = (username or "").strip()
    if username:
        who = Q(actor_name__iexact=username) | Q(target_name__iexact=username)
        user = get_user_model().objects.find(username)
        if user is not None:
            who |= Q(actor=user) | Q(target_user=user)
        found = found.filter(who)
    if action:
        found = found.filter(action=action)
    start, end = day_bounds(date_from, date_to)
    if start is not None:
        found = found.filter(at__gte=start)
    if end is not None:
        found = found.filter(at__lt=end)
    return found


def day_bounds(date_from=None, date_to=None) -> tuple[dt.datetime | None, dt.datetime | None]:
    """[start, end) in UTC for inclusive days ``date_from`` to ``date_to`` in the configured
    time zone; None for a bound not given (or outside the calendar)."""
    start = _start_of_day(date_from) if date_from else None
    end = _start_of_day(date_to + dt.timedelta(days=1)) if date_to and date_to < dt.date.max else None
    return start, end


def _start_of_day(day: dt.date) -> dt.datetime | None:
    """Midnight of ``day`` in the current time zone, in UTC; None where that falls outside the
    calendar (year 1 east of Greenwich), which as a bound means no bound."""
    try:
        start = timezone.make_aware(dt.datetime.combine(day, dt.time.min))
        return start.astimezone(dt.UTC)
    except (OverflowError, ValueError):
        return None


def page(found: QuerySet, *, after=None, before=None, size=PAGE_SIZE) -> Page:
    """A page of events, newest first; ``after``/``before`` are (at, id) pairs.

    Keyset on (at, id) rather than Django's Paginator: the log only grows, and Paginator's
    COUNT plus OFFSET read every skipped row, so page 2,000 of a million events would scan
    100,000 rows; a keyset page is an index seek on ``at`` (indexed) whatever its depth.
    ``id`` breaks ties between events recorded in the same microsecond.
    """
    return keyset_page(found, ("at", "id"), descending=True, after=after, before=before, size=size)


def event_as_dict(event: AuditEvent) -> dict:
    """An event as ``audit list --json`` prints it and the API answers it (a public format)."""
    return {
        "id": event.pk,
        "at": event.at.isoformat(),
        "actor": event.actor_name or None,
        "action": event.action,
        "summary": event.summary,
        "target": event.target_name or None,
        "source_address": event.source_address,
        "detail": event.detail,
        "repeats": event.repeats,
        "last_at": event.last_at.isoformat() if event.last_at else None,
    }
