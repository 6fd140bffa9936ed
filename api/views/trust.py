"""The org-level stores (trusted root store, intermediate pool, approved-CA list), the Match CN
switch, the org CA and the holding tanks."""

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response

from certs import flows, org_ca, reports, tank, verdicts
from certs.forms import AssignTankEntryForm, OrgCACreateForm
from certs.models import OrgCA, Store, StoreEntry, TankEntry
from certs.x509 import format_thumbprint, parse_thumbprint
from users.models import User

from .. import serializers
from ..base import ApiView, validated
from ..idempotency import idempotent
from ..problems import Problem
from . import IDEMPOTENCY_KEY, answers
from .certs import MULTIPART_OR_JSON, certificates_in

STORES = {"roots": Store.ROOT, "intermediates": Store.INTERMEDIATE, "cas": Store.APPROVED}
TAG = ["Trust"]
TANK = ["Holding tanks"]


def outcome_as_dict(outcome: flows.Outcome) -> dict:
    return {
        "changes": [{"message": c.message, "changed": c.changed, "warnings": c.warnings} for c in outcome.changes],
        "warnings": outcome.warnings,
    }


def entry_as_dict(entry: StoreEntry) -> dict:
    """As ``certs roots|intermediates|cas list --json`` prints each entry."""
    return {
        **entry.certificate.as_dict(),
        "added_by": entry.added_by_name or None,
        "added_at": entry.added_at.isoformat(),
    }


class StoreList(ApiView):
    store = ""

    def get(self, request):
        if self.store == Store.APPROVED:
            return Response(
                [
                    {**entry_as_dict(ca.entry), "connects": ca.connects, "reason": ca.reason}
                    for ca in reports.approved_cas()
                ]
            )
        return Response([entry_as_dict(entry) for entry in StoreEntry.objects.in_store(self.store)])

    @idempotent
    def post(self, request):
        data = self.checked(serializers.CertificateFile)
        outcome = flows.add_to_store(self.store, certificates_in(data), request.user, self.address)
        return Response(outcome_as_dict(outcome), status=status.HTTP_201_CREATED if outcome.changed else 200)


class StoreEntryDetail(ApiView):
    store = ""

    def delete(self, request, thumbprint):
        sha1 = parse_thumbprint(thumbprint)
        if not StoreEntry.objects.filter(store=self.store, certificate__sha1=sha1).exists():
            raise Problem(
                404, f"No certificate with thumbprint {format_thumbprint(sha1)} is in {Store(self.store).phrase}."
            )
        return Response(outcome_as_dict(flows.remove_from_store(self.store, sha1, request.user, self.address)))


def store_views(area: str):
    """The list and the entry views of one store, each operation described in its own words."""
    store = STORES[area]
    phrase = Store(store).phrase
    listed = serializers.ApprovedCA if store == Store.APPROVED else serializers.StoreEntry

    @extend_schema(
        operation_id=f"{area}_list", tags=TAG, summary=f"List {phrase}", responses=answers({200: listed(many=True)})
    )
    def get(view, request):
        return StoreList.get(view, request)

    @extend_schema(
        operation_id=f"{area}_add",
        tags=TAG,
        summary=f"Add the certificates in a file to {phrase} (all or nothing)",
        request={"application/json": serializers.CertificateFile, MULTIPART_OR_JSON: serializers.CertificateFile},
        parameters=[IDEMPOTENCY_KEY],
        responses=answers({201: serializers.Outcome, 200: serializers.Outcome}, 400, 413, 422),
    )
    def post(view, request):
        return StoreList.post(view, request)

    @extend_schema(
        operation_id=f"{area}_remove",
        tags=TAG,
        summary=f"Remove a certificate from {phrase}, by thumbprint",
        parameters=[OpenApiParameter("thumbprint", str, OpenApiParameter.PATH, description="40 hex digits.")],
        responses=answers({200: serializers.Outcome}, 400, 404, 422),
    )
    def delete(view, request, thumbprint):
        return StoreEntryDetail.delete(view, request, thumbprint)

    name = area.title()
    listing = type(f"{name}List", (StoreList,), {"store": store, "get": get, "post": post})
    entry = type(f"{name}Entry", (StoreEntryDetail,), {"store": store, "delete": delete})
    return listing, entry


class RootsBundle(ApiView):
    @extend_schema(
        operation_id="roots_bundle",
        tags=TAG,
        summary="The trusted root store as one PEM bundle, for the front proxy's client CA file",
        responses=answers({(200, "application/x-pem-file"): OpenApiResponse(str, description="PEM bundle")}, 422),
    )
    def get(self, request):
        bundle, _count = flows.export_roots()
        return HttpResponse(bundle, content_type="application/x-pem-file")


class MatchCN(ApiView):
    @extend_schema(
        operation_id="match_cn_read",
        tags=TAG,
        summary="Whether Match Cert CN to Username/Full Name is on",
        responses=answers({200: serializers.MatchCN}),
    )
    def get(self, request):
        return Response({"on": verdicts.trust_config().match_cn})

    @extend_schema(
        operation_id="match_cn_set",
        tags=TAG,
        summary="Turn Match Cert CN to Username/Full Name on or off",
        request=serializers.MatchCN,
        responses=answers({200: serializers.MatchCNResult}, 400),
    )
    def put(self, request):
        on = self.checked(serializers.MatchCN)["on"]
        return Response({"on": on, "message": flows.set_match_cn(on, request.user, self.address)})


class OrgCAView(ApiView):
    @extend_schema(
        operation_id="org_ca_read",
        tags=TAG,
        summary="The organisational CA that signs certificates the service creates",
        responses=answers({200: serializers.Certificate}, 404),
    )
    def get(self, request):
        current = OrgCA.active()
        if current is None:
            raise Problem(404, "There is no org CA yet; create one with POST /api/v1/org-ca/.")
        return Response(current.certificate.as_dict())

    @extend_schema(
        operation_id="org_ca_create",
        tags=TAG,
        summary="Create the org CA (installed in the root store and approved at once), or rotate it",
        request=serializers.OrgCACreate,
        parameters=[IDEMPOTENCY_KEY],
        responses=answers({201: serializers.OrgCACreated}, 400, 422),
    )
    @idempotent
    def post(self, request):
        data = self.checked(serializers.OrgCACreate)
        form = validated(OrgCACreateForm, {k: data[k] for k in ("cn", "key_type", "days")})
        created, outcome = org_ca.create(
            form["cn"],
            request.user,
            key_type=form["key_type"],
            days=form["days"],
            rotate=data["rotate"],
            source_address=self.address,
        )
        body = {"org_ca": created.certificate.as_dict(), **outcome_as_dict(outcome)}
        return Response(body, status=status.HTTP_201_CREATED)


class Tank(ApiView):
    @extend_schema(
        operation_id="tank_list",
        tags=TANK,
        summary="Entries waiting in the holding tanks: a user's, the org's, or all",
        parameters=[
            OpenApiParameter("user", str, description="Only this user's tank."),
            OpenApiParameter("org", bool, description="Only the org tank (certificates that named no user)."),
        ],
        responses=answers({200: serializers.TankEntry(many=True)}, 400, 404),
    )
    def get(self, request):
        entries = TankEntry.objects.select_related("user", "certificate", "renewal_of__user", "renewal_of__certificate")
        username, org = request.query_params.get("user"), request.query_params.get("org") in ("1", "true", "yes")
        if username and org:
            raise Problem(400, "Ask for one user's tank or the org tank, not both.")
        if username:
            entries = entries.filter(user=User.objects.named(username))
        elif org:
            entries = entries.filter(user__isnull=True)
        return Response([entry.as_dict() for entry in entries])


def tank_entry_or_404(pk: int) -> None:
    if not TankEntry.objects.filter(pk=pk).exists():
        raise Problem(404, f"There is no holding-tank entry with id {pk}.")


class TankAccept(ApiView):
    assign = False

    def post(self, request, pk):
        tank_entry_or_404(pk)
        data = self.checked(serializers.TankAssign if self.assign else serializers.TankAccept)
        user = None
        if data.get("user") or data.get("as_kind"):
            form = validated(
                AssignTankEntryForm,
                {"username": data.get("user", ""), "as_kind": data.get("as_kind", "thumbprint")},
                fields={"username": "user"},
            )
            user = form["username"]
        message = tank.accept_tank_entry(
            pk,
            request.user,
            user=user,
            as_kind=data.get("as_kind"),
            source_address=self.address,
            allow_shared=data["allow_shared"],
            replace=data["replace"],
            keep_old_days=data["keep_old_days"],
        )
        return Response({"message": message})


TankAcceptView = type(
    "TankAcceptView",
    (TankAccept,),
    {
        "post": extend_schema(
            operation_id="tank_accept",
            tags=TANK,
            summary="Accept a holding-tank entry into a profile: a user's entry as what it is; an org entry for "
            "the user given",
            request=serializers.TankAccept,
            parameters=[IDEMPOTENCY_KEY],
            responses=answers({200: serializers.Message}, 400, 404, 409, 422),
        )(idempotent(TankAccept.post))
    },
)
TankAssignView = type(
    "TankAssignView",
    (TankAccept,),
    {
        "assign": True,
        "post": extend_schema(
            operation_id="tank_assign",
            tags=TANK,
            summary="Assign an org holding-tank entry to a user, by thumbprint or CN",
            request=serializers.TankAssign,
            parameters=[IDEMPOTENCY_KEY],
            responses=answers({200: serializers.Message}, 400, 404, 409, 422),
        )(idempotent(TankAccept.post)),
    },
)


class TankEntryDetail(ApiView):
    @extend_schema(
        operation_id="tank_remove",
        tags=TANK,
        summary="Remove a holding-tank entry",
        responses=answers({200: serializers.Message}, 404, 422),
    )
    def delete(self, request, pk):
        tank_entry_or_404(pk)
        return Response({"message": tank.remove_tank_entry(pk, request.user, self.address)})
