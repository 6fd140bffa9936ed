"""Transfers: every upload and download over either interface. Administrators list them all;
an end user lists those in their own home folder. Filtered by the Transfers page's own form."""

import datetime as dt

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from files import flows
from files.forms import TransferFilterForm
from files.models import Transfer
from users.models import User

from .. import paging, serializers
from ..auth import IsAdministratorOrSelf
from ..base import ApiView, valid_form
from ..problems import Problem
from . import answers
from .audit import SETTLE as AUDIT_SETTLE

TAG = ["Transfers"]
FILTERS = ("user", "interface", "date_from", "date_to")
# Polling hands out transfers this long after they finish, as the audit log does its events.
SETTLE = AUDIT_SETTLE


def parameters(*names: str) -> list[OpenApiParameter]:
    described = {
        "user": (str, "Whose home folder (the username)."),
        "interface": (str, "https or ftps."),
        "date_from": (str, "Finished on this day (YYYY-MM-DD) or later."),
        "date_to": (str, "Finished on this day (YYYY-MM-DD) or earlier."),
        "after_id": (int, "Polling: only transfers after the one with this id, oldest first."),
        "cursor": (str, "From a previous page's next or previous link (not with after_id)."),
        "limit": (int, "At most this many transfers, 1 to 1000 (default 100)."),
    }
    return [OpenApiParameter(name, described[name][0], description=described[name][1]) for name in names]


def listing(view: ApiView, request, username: str | None = None) -> Response:
    """The transfers the query asks for, ``username``'s only when given: a page newest first,
    or with ``after_id`` the ones after that one, oldest first."""
    query = view.checked(serializers.PageQuery, request.query_params)
    if query.get("after_id") is not None and request.query_params.get("cursor"):
        raise Problem(400, "Give after_id (polling) or cursor (pages), not both.")
    data = {name: request.query_params.get(name, "") for name in FILTERS}
    if username is not None:
        data["user"] = username
    found = Transfer.objects.matching(**valid_form(TransferFilterForm, data).filters())
    after_id, limit = query.get("after_id"), query["limit"]
    if after_id is not None:
        rows, url = paging.polled(request, found, after_id=after_id, limit=limit, settled="finished_at", settle=SETTLE)
        return Response({"results": [flows.transfer_as_dict(t) for t in rows], "next": url, "previous": None})
    page = flows.transfer_page(found, size=limit, **paging.bounds(request, (dt.datetime, int)))
    return Response({"results": [flows.transfer_as_dict(t) for t in page.items], **paging.links(request, page)})


class Transfers(ApiView):
    @extend_schema(
        operation_id="transfers_list",
        tags=TAG,
        summary="Transfers, over either interface: pages newest first, or with after_id the ones after that one, "
        "oldest first",
        description="The filters are those of the Transfers page. For polling, start with after_id=0 and follow "
        f"'next', which is always given; transfers are handed to pollers {SETTLE.seconds} seconds after they finish.",
        parameters=parameters("user", "interface", "date_from", "date_to", "after_id", "cursor", "limit"),
        responses=answers({200: serializers.TransferPage}, 400),
    )
    def get(self, request):
        return listing(self, request)


class UserTransfers(ApiView):
    permission_classes = [IsAdministratorOrSelf]

    @extend_schema(
        operation_id="users_transfers_list",
        tags=TAG,
        summary="The transfers in one user's home folder (an end user may list their own)",
        parameters=parameters("interface", "date_from", "date_to", "after_id", "cursor", "limit"),
        responses=answers({200: serializers.TransferPage}, 400, 404),
    )
    def get(self, request, username):
        return listing(self, request, User.objects.named(username).username)
