"""Revocation: the CRL store and the revocation policies, through the same use cases as
``certs crls`` and ``certs revocation``, and revoking a certificate the org CA issued, as
``certs revoke`` does."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from certs import crls as crl_store
from certs import org_ca
from certs.loading import MAX_FILE_BYTES
from certs.models import Credential, CredentialKind, Crl, RevocationPolicy
from certs.x509 import format_thumbprint, parse_thumbprint
from users.models import User

from .. import serializers
from ..base import ApiView, raw_file_parser, uploaded
from ..idempotency import idempotent
from ..problems import JSONParser, Problem, TooLarge
from . import IDEMPOTENCY_KEY, answers
from .certs import MULTIPART_OR_JSON
from .certs import TAG as CERTIFICATES
from .trust import outcome_as_dict

CRLS = ["Revocation"]
RAW = ("application/pkix-crl", "application/x-pem-file", "application/octet-stream")
THUMBPRINT = OpenApiParameter(
    "thumbprint", str, OpenApiParameter.PATH, description="The CA's thumbprint: 40 hex digits."
)
SEND = (
    "Send the CRL file: as 'file' (multipart), 'file_base64' or 'pem' (JSON), or as the raw body "
    "(application/pkix-crl for DER, application/x-pem-file for PEM)."
)


def crl_or_404(pk: int) -> Crl:
    row = crl_store.stored_crls().filter(pk=pk).first()
    if row is None:
        raise Problem(404, f"There is no CRL with id {pk}.")
    return row


class Crls(ApiView):
    parser_classes = [JSONParser, MultiPartParser, *(raw_file_parser(t) for t in RAW)]

    @extend_schema(
        operation_id="crls_list",
        tags=CRLS,
        summary="The stored CRLs: issuer, number, this and next update, full or delta, revoked count, freshness",
        responses=answers({200: serializers.Crl(many=True)}),
    )
    def get(self, request):
        return Response([crl_store.crl_as_dict(row) for row in crl_store.stored_crls()])

    @extend_schema(
        operation_id="crls_add",
        tags=CRLS,
        summary="Add the CRLs in a file (DER or PEM, full or delta), each stored only if a known CA's key verifies it",
        description="Send the file as JSON ('pem' or 'file_base64'), multipart/form-data ('file') or as the raw body "
        "(application/pkix-crl for DER, application/x-pem-file for PEM). Each CRL stands alone: one refused does "
        "not stop the others, and is listed in 'refused'. When every CRL in the file is refused, the answer is a "
        "422 problem with the reasons.",
        request={
            "application/json": serializers.CrlFile,
            MULTIPART_OR_JSON: serializers.CrlFile,
            "application/pkix-crl": OpenApiTypes.BINARY,
            "application/x-pem-file": OpenApiTypes.STR,
        },
        parameters=[IDEMPOTENCY_KEY],
        responses=answers({201: serializers.CrlsAdded, 200: serializers.CrlsAdded}, 400, 413, 422),
    )
    @idempotent
    def post(self, request):
        data = self.checked(serializers.CrlFile)
        if not any(data.get(name) for name in ("file", "file_base64", "pem")):
            raise ValidationError({"file": [SEND]})
        upload = uploaded(data, required=True)
        filename = upload.name if request.content_type.startswith("multipart/") else ""
        content = upload.read(MAX_FILE_BYTES + 1)
        if len(content) > MAX_FILE_BYTES:  # as the Revocation page's upload
            raise TooLarge(
                f"The file is larger than {MAX_FILE_BYTES:,} bytes, which is the most an upload takes; add a larger "
                "CRL with manage.py certs crls add FILE, or let manage.py certs crls fetch get it."
            )
        added = []
        outcome, refused = crl_store.add_crl_file(
            content, request.user, filename=filename, source_address=self.address, added=added
        )
        if refused and not outcome.changed:
            raise Problem(422, " ".join(refused), refused=refused, **outcome_as_dict(outcome))
        body = {
            **outcome_as_dict(outcome),
            "crls": [
                crl_store.crl_as_dict(row) for row in crl_store.stored_crls().filter(pk__in=[r.pk for r in added])
            ],
            "refused": refused,
        }
        return Response(body, status=status.HTTP_201_CREATED if outcome.changed else status.HTTP_200_OK)


class CrlDetail(ApiView):
    @extend_schema(
        operation_id="crls_read",
        tags=CRLS,
        summary="One stored CRL",
        responses=answers({200: serializers.Crl}, 404),
    )
    def get(self, request, pk):
        return Response(crl_store.crl_as_dict(crl_or_404(pk)))

    @extend_schema(
        operation_id="crls_remove",
        tags=CRLS,
        summary="Remove a stored CRL and the revocations it holds",
        responses=answers({200: serializers.Message}, 404, 422),
    )
    def delete(self, request, pk):
        crl_or_404(pk)
        return Response({"message": crl_store.remove_crl(pk, request.user, source_address=self.address)})


class Revocation(ApiView):
    @extend_schema(
        operation_id="revocation_read",
        tags=CRLS,
        summary="How revocation is checked: the org default and each CA's override ('certs revocation show --json')",
        responses=answers({200: serializers.Revocation}),
    )
    def get(self, request):
        return Response(crl_store.policies_as_dict())

    @extend_schema(
        operation_id="revocation_set",
        tags=CRLS,
        summary="Set the org default revocation policy ('certs revocation set')",
        request=serializers.RevocationSet,
        responses=answers({200: serializers.RevocationChanged}, 400, 422),
    )
    def put(self, request):
        return Response(set_policy(self, None))


class RevocationOverride(ApiView):
    @extend_schema(
        operation_id="revocation_ca_set",
        tags=CRLS,
        summary="Set one CA's revocation policy, overriding the org default ('certs revocation set --ca')",
        parameters=[THUMBPRINT],
        request=serializers.RevocationSet,
        responses=answers({200: serializers.RevocationChanged}, 400, 422),
    )
    def put(self, request, thumbprint):
        return Response(set_policy(self, thumbprint))

    @extend_schema(
        operation_id="revocation_ca_remove",
        tags=CRLS,
        summary="Remove one CA's override: it follows the org default again ('certs revocation remove --ca')",
        parameters=[THUMBPRINT],
        responses=answers({200: serializers.RevocationRemoved}, 400, 404, 422),
    )
    def delete(self, request, thumbprint):
        sha1 = parse_thumbprint(thumbprint)
        if not RevocationPolicy.objects.filter(ca_sha1=sha1).exists():
            raise Problem(
                404,
                f"The CA with thumbprint {format_thumbprint(sha1)} has no revocation policy of its own; "
                "it follows the org default.",
            )
        message = crl_store.remove_policy(request.user, thumbprint, source_address=self.address)
        return Response({"message": message, "revocation": crl_store.policies_as_dict()})


def set_policy(view: ApiView, thumbprint: str | None) -> dict:
    data = view.checked(serializers.RevocationSet)
    outcome = crl_store.set_policy(
        view.request.user,
        check=data["check"],
        ca_thumbprint=thumbprint,
        when_unknown=data.get("when_unknown"),
        grace_hours=data.get("grace_hours"),
        source_address=view.address,
    )
    return {**outcome_as_dict(outcome), "revocation": crl_store.policies_as_dict()}


class RevokeCertificate(ApiView):
    @extend_schema(
        operation_id="certificates_revoke",
        tags=CERTIFICATES,
        summary="Revoke a certificate the org CA issued, by its entry on the user's profile ('certs revoke')",
        description="The org CA's CRL lists it from now on (signed again at once and put in the CRL store), and its "
        "thumbprint leaves the profile. Certificates other CAs issued are revoked by their CA's CRL (crls/).",
        request=serializers.Revoke,
        responses=answers({200: serializers.Outcome}, 400, 404, 422),
    )
    def post(self, request, username, pk):
        user = User.objects.named(username)
        credential = Credential.objects.filter(user=user, pk=pk).first()
        if credential is None:
            raise Problem(404, f"{user.username}'s profile has no certificate entry with id {pk}.")
        if credential.kind != CredentialKind.THUMBPRINT:
            raise Problem(
                422,
                f"Entry {pk} on {user.username}'s profile is the CN '{credential.value}', not a certificate: "
                "only a certificate the org CA issued can be revoked. Remove the CN entry instead.",
            )
        reason = self.checked(serializers.Revoke)["reason"]
        outcome = org_ca.revoke(user, credential.value, request.user, reason=reason, source_address=self.address)
        return Response(outcome_as_dict(outcome))
