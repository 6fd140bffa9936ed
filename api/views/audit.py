"""The audit log: filtered pages, newest first; or, for a SIEM polling it, the events after a
given one, oldest first, with the address to poll next."""

import datetime as dt

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from audit import log

from .. import paging, serializers
from ..base import ApiView
from ..problems import Problem
from . import answers

# Polling hands out only events this old: one written in a transaction still open (an id taken,
# not yet visible) is then never skipped by a poller that has moved past its id.
SETTLE = dt.timedelta(seconds=2)


class AuditLog(ApiView):
    @extend_schema(
        operation_id="audit_list",
        tags=["Audit log"],
        summary="The audit log: pages newest first, or with after_id the events after that one, oldest first",
        description="For polling into a SIEM: start with after_id=0 and follow 'next', which is always given. "
        f"Events are handed to pollers {SETTLE.seconds} seconds after they are recorded, so that none "
        "committed late is skipped; an event's 'repeats' may grow after it was handed out.",
        parameters=[
            OpenApiParameter(name, str if name not in ("after_id", "limit") else int, description=text)
            for name, text in (
                ("user", "Events by or about this user."),
                ("action", "Only this action, e.g. credential.add or signon.refused."),
                ("date_from", "From this day (YYYY-MM-DD), included."),
                ("date_to", "To this day (YYYY-MM-DD), included."),
                ("after_id", "Polling: only events after the one with this id, oldest first."),
                ("cursor", "From a previous page's next or previous link (not with after_id)."),
                ("limit", "At most this many events, 1 to 1000 (default 100)."),
            )
        ],
        responses=answers({200: serializers.AuditPage}, 400),
    )
    def get(self, request):
        query = self.checked(serializers.AuditQuery, request.query_params)
        if query.get("after_id") is not None and request.query_params.get("cursor"):
            raise Problem(400, "Give after_id (polling) or cursor (pages), not both.")
        start, end = query.get("date_from"), query.get("date_to")
        if start and end and start > end:
            raise Problem(
                400,
                "date_to is before date_from.",
                errors=[{"field": "date_to", "pointer": None, "detail": "Before date_from."}],
            )
        found = log.events(username=query["user"], action=query["action"], date_from=start, date_to=end)
        limit = query["limit"]
        after_id = query.get("after_id")
        if after_id is not None:
            events, url = paging.polled(request, found, after_id=after_id, limit=limit, settled="at", settle=SETTLE)
            return Response({"results": [log.event_as_dict(e) for e in events], "next": url, "previous": None})
        page = log.page(found, size=limit, **paging.bounds(request, (dt.datetime, int)))
        return Response({"results": [log.event_as_dict(e) for e in page.items], **paging.links(request, page)})
