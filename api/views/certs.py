"""Users' profile entries (Edit SSL Client Certificates), certificates issued by the org CA, and
``check``: the verdict on a certificate, exactly as ``certs check --json`` prints it."""

import base64

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from certs import flows, issuing, org_ca, reports, verdicts
from certs.forms import AddCredentialForm, CertificateUploadForm, CreateCertificateForm, DoctorForm
from certs.models import Credential, CredentialKind
from users.models import User

from .. import serializers
from ..auth import IsAdministratorOrSelf
from ..base import ApiView, uploaded, validated
from ..idempotency import idempotent
from ..problems import Problem
from . import IDEMPOTENCY_KEY, answers

TAG = ["Client certificates"]
MULTIPART_OR_JSON = "multipart/form-data"


def certificates_in(data: dict) -> list:
    """The certificates in the file a request sent, read as the pages read an upload."""
    upload = uploaded(data, required=True)
    cleaned = validated(CertificateUploadForm, {"password": data.get("password", "")}, {"file": upload})
    return cleaned["certificates"]


class ProfileCertificates(ApiView):
    permission_classes = [IsAdministratorOrSelf]

    @extend_schema(
        operation_id="certificates_list",
        tags=TAG,
        summary="The thumbprints and CNs on a user's profile (an end user may read their own)",
        responses=answers({200: serializers.Credential(many=True)}, 404),
    )
    def get(self, request, username):
        user = User.objects.named(username)
        credentials = Credential.objects.filter(user=user).select_related("certificate", "user")
        return Response([c.as_dict() for c in credentials])

    @extend_schema(
        operation_id="certificates_add",
        tags=TAG,
        summary="Add a thumbprint (any common notation) or a CN to a user's profile",
        request=serializers.CredentialAdd,
        parameters=[IDEMPOTENCY_KEY],
        responses=answers({201: serializers.Credential, 200: serializers.Credential}, 400, 404, 409, 422),
    )
    @idempotent
    def post(self, request, username):
        user = User.objects.named(username)
        data = self.checked(serializers.CredentialAdd)
        form = validated(AddCredentialForm, {"kind": data["kind"], "value": data["value"]})
        add = flows.add_thumbprint if form["kind"] == CredentialKind.THUMBPRINT else flows.add_cn
        credential, added = add(
            user, form["value"], request.user, source_address=self.address, allow_shared=data["allow_shared"]
        )
        return Response(credential.as_dict(), status=status.HTTP_201_CREATED if added else status.HTTP_200_OK)


class ProfileCertificate(ApiView):
    permission_classes = [IsAdministratorOrSelf]

    @extend_schema(
        operation_id="certificates_read",
        tags=TAG,
        summary="One entry on a user's profile",
        responses=answers({200: serializers.Credential}, 404),
    )
    def get(self, request, username, pk):
        user = User.objects.named(username)
        credential = Credential.objects.filter(user=user, pk=pk).select_related("certificate", "user").first()
        if credential is None:
            raise Problem(404, f"{user.username}'s profile has no certificate entry with id {pk}.")
        return Response(credential.as_dict())

    @extend_schema(
        operation_id="certificates_remove",
        tags=TAG,
        summary="Remove a thumbprint or CN from a user's profile",
        responses=answers({200: serializers.Message}, 404, 422),
    )
    def delete(self, request, username, pk):
        user = User.objects.named(username)
        if not Credential.objects.filter(user=user, pk=pk).exists():
            raise Problem(404, f"{user.username}'s profile has no certificate entry with id {pk}.")
        return Response({"message": flows.remove_credential(user, pk, request.user, source_address=self.address)})


class ImportCertificates(ApiView):
    @extend_schema(
        operation_id="certificates_import",
        tags=TAG,
        summary="Record the certificates in a file on a user's profile, by thumbprint (the default), CN or both",
        request={"application/json": serializers.CertificateImport, MULTIPART_OR_JSON: serializers.CertificateImport},
        parameters=[IDEMPOTENCY_KEY],
        responses=answers({201: serializers.ImportResult, 200: serializers.ImportResult}, 400, 404, 409, 413, 422),
    )
    @idempotent
    def post(self, request, username):
        user = User.objects.named(username)
        data = self.checked(serializers.CertificateImport)
        certificates = certificates_in(data)
        imported, skipped = flows.import_to_profile(
            user,
            certificates,
            request.user,
            source_address=self.address,
            allow_shared=data["allow_shared"],
            record_as=data["record_as"],
        )
        body = {"imported": [_imported(item) for item in imported], "skipped_ca": skipped}
        added = any(item.thumbprint_added or item.cn_added for item in imported)
        return Response(body, status=status.HTTP_201_CREATED if added else status.HTTP_200_OK)


def _imported(item: flows.ImportedCertificate) -> dict:
    return {
        "certificate": item.certificate.as_dict(),
        "thumbprint_added": item.thumbprint_added,
        "cn_added": item.cn_added,
        "self_signed": item.self_signed,
        "issuer_approved": item.issuer_approved,
        "notes": item.notes,
        "offer_install": item.offer_install,
        "issuer_to_approve": item.issuer_to_approve.as_dict() if item.issuer_to_approve else None,
    }


class IssueCertificate(ApiView):
    @extend_schema(
        operation_id="certificates_issue",
        tags=TAG,
        summary="Create a certificate for a user, signed by the org CA; the PKCS#12 file is returned this once",
        description="The private key exists only inside the returned PKCS#12 file; the service never keeps it. "
        "A retry with the same Idempotency-Key answers with the certificate but without the file.",
        request=serializers.Issue,
        parameters=[IDEMPOTENCY_KEY],
        responses=answers({201: serializers.Issued}, 400, 404, 422),
    )
    @idempotent
    def post(self, request, username):
        user = User.objects.named(username)
        data = self.checked(serializers.Issue)
        form = validated(
            CreateCertificateForm,
            {"cn": data.get("cn") or user.username, "days": data["days"], "key_type": data["key_type"]},
        )
        made_up = "password" not in data
        password = issuing.generate_password() if made_up else data["password"]
        issued = org_ca.issue_certificate(
            user,
            request.user,
            password=password,
            cn=form["cn"],
            days=form["days"],
            key_type=form["key_type"],
            source_address=self.address,
            pkcs12_format=data["pkcs12_format"],
        )
        summary = {"credential": issued.credential.as_dict(), "certificate": issued.certificate.as_dict()}
        body = {
            **summary,
            "pkcs12_base64": base64.b64encode(issued.pkcs12).decode(),
            "password": password if made_up else None,
        }
        response = Response(body, status=status.HTTP_201_CREATED)
        # A retry is told what was issued, never given the file (or its password) again.
        response.replay_data = {**summary, "pkcs12_base64": None, "password": None}
        return response


class Check(ApiView):
    @extend_schema(
        operation_id="check",
        tags=["Check"],
        summary="Whether a certificate connects and whom it authenticates: the JSON of 'certs check --json'",
        description="The first certificate in the file is judged; any others, and those in the chain, act as "
        "the chain the client would send. Judged exactly as sign-on and the doctor judge.",
        request={"application/json": serializers.Check, MULTIPART_OR_JSON: serializers.Check},
        responses=answers({200: serializers.Verdict}, 400, 413),
    )
    def post(self, request):
        data = self.checked(serializers.Check)
        files = {"file": uploaded(data, required=True)}
        chain = uploaded(data, prefix="chain_")
        if chain is not None:
            files["chain_file"] = chain
        form = validated(
            DoctorForm,
            {"password": data.get("password", ""), "username": data.get("username", "")},
            files,
            fields={"chain_file": "chain_file", "pasted": "pem"},
        )
        user = form["username"]
        diagnosis = reports.diagnose(form["certificate"], form["chain"], username=user.username if user else None)
        return Response(verdicts.verdict_as_dict(diagnosis.verdict))
