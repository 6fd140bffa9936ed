"""Revocation through the API: the CRL store and the policies, answered by the same use cases as
``certs crls`` and ``certs revocation``, in the same words, and ``check`` giving the same
``connect.revocation`` as ``certs check --json``."""

import base64
import json
from io import StringIO

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.views.revocation import RAW
from audit.models import AuditEvent
from certs import crls, flows
from certs.flows import FlowError
from certs.loading import MAX_FILE_BYTES
from certs.models import Credential, Crl, OrgCA, RevocationPolicy
from certs.x509 import format_thumbprint, sha1_thumbprint
from tests.api_setup import bearer, cast_fixture  # noqa: F401 - the fixture
from tests.pki import crl_der, crl_pem, make_client, make_crl, make_root

pytestmark = pytest.mark.django_db


def body(response) -> dict:
    return json.loads(response.content)


def admin(cast, method, path, data=None, **extra):
    kwargs = {**bearer(cast.alice_token), **extra}
    if data is not None:
        kwargs.update(data=json.dumps(data), content_type="application/json")
    return getattr(Client(), method)(path, **kwargs)


def raw(cast, path, content: bytes, content_type: str, **extra):
    return Client().post(path, data=content, content_type=content_type, **bearer(cast.alice_token), **extra)


def command(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def refusal(*args) -> str:
    with pytest.raises(CommandError) as refused:
        command(*args)
    return str(refused.value)


def thumbprint(issued) -> str:
    return format_thumbprint(sha1_thumbprint(issued.cert))


# --- CRLs ---------------------------------------------------------------------------------------


def test_the_crl_list_is_the_command_lines(cast):
    listed = admin(cast, "get", "/api/v1/crls/")
    assert listed.status_code == 200
    assert body(listed) == json.loads(command("certs", "crls", "list", "--json"))
    (crl,) = [c for c in body(listed) if c["id"] == cast.crl.pk]
    assert crl["id"] == cast.crl.pk and crl["kind"] == "full" and crl["number"] == "1"
    assert crl["entries"] == 1 and crl["freshness"] == "fresh" and "Chug and Ring" in crl["issuer"]
    assert body(admin(cast, "get", f"/api/v1/crls/{cast.crl.pk}/")) == crl


@pytest.mark.parametrize(
    "how",
    ["json pem", "json base64 der", "multipart", "raw der", "raw pem"],
)
def test_a_crl_is_added_in_any_of_the_ways_a_script_sends_a_file(cast, spec, how):
    der = crl_der(make_crl(spec.toot, [(spec.chug.cert, x509.ReasonFlags.key_compromise)]))
    pem = x509.load_der_x509_crl(der).public_bytes(serialization.Encoding.PEM)

    def send():
        if how == "json pem":
            return admin(cast, "post", "/api/v1/crls/", {"pem": pem.decode()})
        if how == "json base64 der":
            return admin(cast, "post", "/api/v1/crls/", {"file_base64": base64.b64encode(der).decode()})
        if how == "multipart":
            upload = SimpleUploadedFile("toot.crl", der)
            return Client().post("/api/v1/crls/", {"file": upload}, **bearer(cast.alice_token))
        if how == "raw der":
            return raw(cast, "/api/v1/crls/", der, "application/pkix-crl")
        return raw(cast, "/api/v1/crls/", pem, "application/x-pem-file")

    response = send()
    assert response.status_code == 201, response.content
    added = body(response)
    (crl,) = added["crls"]
    assert crl["entries"] == 1 and crl["signer"] == thumbprint(spec.toot) and added["refused"] == []
    assert added["changes"][0]["message"].startswith(("Added the CRL of 'Toot'", "toot.crl: Added the CRL"))
    assert AuditEvent.objects.filter(action="crl.add", detail__id=crl["id"]).exists()
    again = send()
    assert again.status_code == 200 and "stored already" in body(again)["changes"][0]["message"]
    assert body(again)["crls"] == []


def test_a_crl_no_known_ca_verifies_is_refused_with_the_reason(cast):
    stranger = make_root("Nobody We Know")
    crl = crl_pem(make_crl(stranger))
    response = raw(cast, "/api/v1/crls/", crl, "application/x-pem-file")
    assert response.status_code == 422 and response["Content-Type"] == "application/problem+json"
    problem = body(response)
    assert problem["detail"].startswith("The CRL of 'Nobody We Know' was refused")
    assert problem["refused"] == [problem["detail"]]
    assert not Crl.objects.filter(issuer__contains="Nobody We Know").exists()


def test_an_older_crl_than_the_one_stored_is_refused(cast, spec):
    response = admin(cast, "post", "/api/v1/crls/", {"pem": crl_pem(make_crl(spec.chug, number=0)).decode()})
    assert response.status_code == 422 and "a newer one is stored already" in body(response)["detail"]


@pytest.mark.parametrize(
    ("content", "content_type", "status", "words"),
    [
        (b"", "application/pkix-crl", 400, "or as the raw body"),
        (b"\x30\x03\x02\x01\x00", "application/pkix-crl", 422, ""),
        (b"-----BEGIN X509 CRL-----\nnot base64\n-----END X509 CRL-----\n", "application/x-pem-file", 422, ""),
        (b"{}", "application/json", 400, "Send the CRL file"),
        (b"crl", "text/plain", 415, ""),
    ],
    ids=["empty", "not-a-crl", "broken-pem", "no-file", "unknown-media-type"],
)
def test_a_bad_crl_upload_is_a_problem_never_a_500(cast, content, content_type, status, words):
    response = raw(cast, "/api/v1/crls/", content, content_type)
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json" and words in body(response)["detail"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    prefix=st.sampled_from([b"", b"-----BEGIN X509 CRL-----\n", b"-----BEGIN CERTIFICATE-----\n", b"\x30\x82"]),
    content=st.binary(min_size=1, max_size=400),
    media_type=st.sampled_from(RAW),
)
def test_no_raw_body_makes_a_crl_upload_answer_500(cast, prefix, content, media_type):
    response = raw(cast, "/api/v1/crls/", prefix + content, media_type)
    assert response.status_code in (200, 201, 400, 422), response.content[:500]


def test_a_crl_file_larger_than_an_upload_takes_is_refused_and_the_way_is_named(cast):
    response = raw(cast, "/api/v1/crls/", b"0" * (MAX_FILE_BYTES + 1), "application/pkix-crl")
    detail = body(response)["detail"]
    assert response.status_code == 413 and "the most an upload takes" in detail
    assert "manage.py certs crls add FILE" in detail


def test_a_crl_sent_again_with_its_key_is_answered_and_a_new_body_needs_a_new_key(cast, spec):
    der = crl_der(make_crl(spec.toot))
    first = raw(cast, "/api/v1/crls/", der, "application/pkix-crl", HTTP_IDEMPOTENCY_KEY="crl-1")
    again = raw(cast, "/api/v1/crls/", der, "application/pkix-crl", HTTP_IDEMPOTENCY_KEY="crl-1")
    assert first.status_code == again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert body(first) == body(again)
    other = raw(
        cast,
        "/api/v1/crls/",
        crl_der(make_crl(spec.toot, number=2)),
        "application/pkix-crl",
        HTTP_IDEMPOTENCY_KEY="crl-1",
    )
    assert other.status_code == 422 and "Idempotency-Key" in body(other)["detail"]


def test_a_crl_is_removed_by_id_and_an_unknown_id_is_a_404(cast):
    removed = admin(cast, "delete", f"/api/v1/crls/{cast.crl.pk}/")
    assert removed.status_code == 200
    assert body(removed)["message"] == f"Removed the CRL of 'Chug and Ring' (id {cast.crl.pk})."
    assert not Crl.objects.filter(pk=cast.crl.pk).exists()
    for method in ("get", "delete"):
        missing = admin(cast, method, f"/api/v1/crls/{cast.crl.pk}/")
        assert missing.status_code == 404 and body(missing)["detail"] == f"There is no CRL with id {cast.crl.pk}."


# --- policies -----------------------------------------------------------------------------------


def test_the_policies_are_the_command_lines(cast, spec):
    shown = body(admin(cast, "get", "/api/v1/revocation/"))
    assert shown == json.loads(command("certs", "revocation", "show", "--json"))
    assert shown["default"]["check"] == "off"
    assert [o["ca"] for o in shown["overrides"]] == [thumbprint(spec.toot)]


def test_the_org_default_and_a_cas_override_are_set_as_on_the_command_line(cast, spec):
    response = admin(cast, "put", "/api/v1/revocation/", {"check": "crl", "grace_hours": 6})
    assert response.status_code == 200, response.content
    changed = body(response)
    assert changed["changes"][0]["message"].startswith("Revocation policy for the org default: checked by CRL")
    assert changed["revocation"]["default"] | {"set_at": None} == {
        "check": "crl",
        "when_unknown": "refuse",
        "grace_hours": 6,
        "set_by": "alice",
        "set_at": None,
    }
    response = admin(
        cast, "put", f"/api/v1/revocation/{thumbprint(spec.chug)}/", {"check": "crl", "when_unknown": "allow"}
    )
    assert response.status_code == 200
    (chug,) = [o for o in body(response)["revocation"]["overrides"] if o["ca"] == thumbprint(spec.chug)]
    assert (chug["check"], chug["when_unknown"]) == ("crl", "allow")
    assert body(admin(cast, "get", "/api/v1/revocation/")) == json.loads(
        command("certs", "revocation", "show", "--json")
    )


@pytest.mark.parametrize(
    ("data", "args"),
    [
        ({"check": "sometimes"}, ["--check", "sometimes"]),
        ({"check": "crl", "when_unknown": "maybe"}, ["--check", "crl", "--when-unknown", "maybe"]),
        ({"check": "crl", "grace_hours": -1}, ["--check", "crl", "--grace-hours", "-1"]),
        ({"check": "crl", "grace_hours": 10**9}, ["--check", "crl", "--grace-hours", str(10**9)]),
    ],
    ids=["unknown-check", "unknown-when-unknown", "negative-grace", "huge-grace"],
)
def test_a_policy_is_refused_in_the_command_lines_words(cast, data, args):
    response = admin(cast, "put", "/api/v1/revocation/", data)
    assert response.status_code == 422, response.content
    # The command line's own choices stop some values before the use case: call it as it does.
    with pytest.raises(FlowError) as refused:
        crls.set_policy(
            "test suite",
            check=data["check"],
            when_unknown=data.get("when_unknown"),
            grace_hours=data.get("grace_hours"),
        )
    assert body(response)["detail"] == str(refused.value)
    if "grace_hours" in data:
        assert body(response)["detail"] == refusal("certs", "revocation", "set", *args)
    assert RevocationPolicy.objects.filter(ca_sha1="").count() == 0


@pytest.mark.parametrize("check", ["ocsp", "crl+ocsp"])
def test_ocsp_policies_are_set_as_the_command_line_sets_them(cast, check):
    response = admin(cast, "put", "/api/v1/revocation/", {"check": check, "when_unknown": "allow"})
    assert response.status_code == 200, response.content
    assert body(response)["revocation"]["default"]["check"] == check
    assert body(admin(cast, "get", "/api/v1/revocation/")) == json.loads(
        command("certs", "revocation", "show", "--json")
    )


def test_a_policy_of_the_wrong_type_or_for_an_unknown_ca_is_a_problem(cast, spec):
    for data in ({}, {"check": None}, {"check": "crl", "grace_hours": "six"}, {"check": ["crl"]}):
        response = admin(cast, "put", "/api/v1/revocation/", data)
        assert response.status_code == 400, data
        assert body(response)["errors"][0]["field"] in ("check", "grace_hours")
    bad = admin(cast, "put", "/api/v1/revocation/not-a-thumbprint/", {"check": "crl"})
    assert bad.status_code == 400
    stranger = thumbprint(make_root("Nobody We Know"))
    unknown = admin(cast, "put", f"/api/v1/revocation/{stranger.replace(' ', '')}/", {"check": "crl"})
    assert unknown.status_code == 422
    assert body(unknown)["detail"] == refusal("certs", "revocation", "set", "--ca", stranger, "--check", "crl")


def test_a_cas_override_is_removed_and_it_follows_the_org_default(cast, spec):
    toot = thumbprint(spec.toot).replace(" ", "")
    removed = admin(cast, "delete", f"/api/v1/revocation/{toot}/")
    assert removed.status_code == 200
    assert body(removed)["message"].startswith("Removed the revocation policy for 'Toot'")
    assert body(removed)["revocation"]["overrides"] == []
    assert AuditEvent.objects.filter(action="revocation.remove").count() == 1
    missing = admin(cast, "delete", f"/api/v1/revocation/{toot}/")
    assert missing.status_code == 404 and "no revocation policy of its own" in body(missing)["detail"]
    # The command line removes an override through the same use case.
    command("certs", "revocation", "set", "--ca", toot, "--check", "off")
    assert "Removed the revocation policy for 'Toot'" in command("certs", "revocation", "remove", "--ca", toot)


# --- the verdict --------------------------------------------------------------------------------


def test_check_gives_the_command_lines_revocation_for_a_revoked_certificate(cast, spec, tmp_path):
    lost = make_client("Lost", spec.chug)
    assert admin(cast, "post", "/api/v1/crls/", {"pem": crl_pem(make_crl(spec.toot)).decode()}).status_code == 201
    added = admin(
        cast,
        "post",
        "/api/v1/crls/",
        {"pem": crl_pem(make_crl(spec.chug, [(lost.cert, x509.ReasonFlags.key_compromise)], number=2)).decode()},
    )
    assert added.status_code == 201, added.content
    assert admin(cast, "put", "/api/v1/revocation/", {"check": "crl"}).status_code == 200
    assert admin(cast, "delete", f"/api/v1/revocation/{thumbprint(spec.toot).replace(' ', '')}/").status_code == 200
    for name, issued in {"revoked": lost, "good": spec.frank}.items():
        path = tmp_path / f"{name}.pem"
        path.write_bytes(issued.pem)
        by_api = body(admin(cast, "post", "/api/v1/check/", {"pem": issued.pem.decode()}))
        by_command = json.loads(command("certs", "check", str(path), "--json"))
        assert by_api == by_command, name
        statuses = [r["status"] for r in by_api["connect"]["revocation"]]
        if name == "revoked":
            assert by_api["category"] == "cannot_connect" and statuses[0] == "revoked"
            assert by_api["connect"]["revocation"][0]["thumbprint"] == thumbprint(lost)
            assert by_api["connect"]["revocation"][0]["source"]
        else:
            assert by_api["category"] == "authenticates" and statuses[:2] == ["good", "good"]


# --- revoking what the org CA issued --------------------------------------------------------------


def test_a_certificate_the_org_ca_issued_is_revoked_as_on_the_command_line(cast, tmp_path):
    by_api, by_command = cast.issued_credential(), cast.issued_credential()
    response = admin(cast, "post", f"/api/v1/users/rich/certificates/{by_api.pk}/revoke/", {"reason": "key-compromise"})
    assert response.status_code == 200, response.content
    revoked = body(response)
    shown = by_api.shown_value
    assert revoked["changes"][0]["message"].startswith(f"Revoked 'rich' ({shown}) of rich (reason: key compromise)")
    assert revoked["changes"][1]["message"].startswith("The org CA's CRL now lists it")
    assert not Credential.objects.filter(pk=by_api.pk).exists()
    said = command("certs", "revoke", "rich", by_command.shown_value, "--reason", "key-compromise")
    assert revoked["changes"][0]["message"].replace(shown, by_command.shown_value) in said
    event = AuditEvent.objects.get(action="certificate.revoke", detail__thumbprint=shown)
    assert event.actor_name == "alice" and event.detail["reason"] == "key-compromise"
    # Revoked once is revoked: the entry has left the profile.
    again = admin(cast, "post", f"/api/v1/users/rich/certificates/{by_api.pk}/revoke/", {})
    assert again.status_code == 404


def test_a_revoked_certificate_cannot_connect_where_revocation_is_checked(cast, spec):
    credential = cast.issued_credential()
    certificate = credential.certificate.to_x509()
    assert admin(cast, "post", f"/api/v1/users/rich/certificates/{credential.pk}/revoke/", {}).status_code == 200
    org = cast_org_ca_thumbprint()
    assert admin(cast, "put", f"/api/v1/revocation/{org}/", {"check": "crl"}).status_code == 200
    pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    verdict = body(admin(cast, "post", "/api/v1/check/", {"pem": pem}))
    assert verdict["category"] == "cannot_connect"
    assert verdict["connect"]["revocation"][0]["status"] == "revoked"


def cast_org_ca_thumbprint() -> str:
    return OrgCA.active().certificate.thumbprint.replace(" ", "")


def test_revoking_refuses_what_the_org_ca_cannot_revoke_in_the_use_cases_words(cast, spec):
    frank = cast.rich_credential
    refused = admin(cast, "post", f"/api/v1/users/rich/certificates/{frank.pk}/revoke/", {})
    assert refused.status_code == 422
    assert body(refused)["detail"] == refusal("certs", "revoke", "rich", frank.shown_value)
    laptop = make_client("Rich laptop", spec.chug)
    imported = admin(cast, "post", "/api/v1/users/rich/certificates/import/", {"pem": laptop.pem.decode()})
    entry = body(imported)["imported"][0]["certificate"]["thumbprint"]
    (other,) = Credential.objects.filter(user=cast.rich, value=entry.replace(" ", ""))
    elsewhere = admin(cast, "post", f"/api/v1/users/rich/certificates/{other.pk}/revoke/", {})
    assert elsewhere.status_code == 422 and "was not issued by the org CA" in body(elsewhere)["detail"]
    assert body(elsewhere)["detail"] == refusal("certs", "revoke", "rich", entry)
    cn, _ = flows.add_cn(cast.rich, "Rich Example", "test suite")
    by_cn = admin(cast, "post", f"/api/v1/users/rich/certificates/{cn.pk}/revoke/", {})
    assert by_cn.status_code == 422 and "not a certificate" in body(by_cn)["detail"]
    issued = cast.issued_credential()
    bad = admin(cast, "post", f"/api/v1/users/rich/certificates/{issued.pk}/revoke/", {"reason": "boredom"})
    assert bad.status_code == 400 and body(bad)["errors"][0]["field"] == "reason"
    assert admin(cast, "post", "/api/v1/users/rich/certificates/999999/revoke/", {}).status_code == 404
    assert admin(cast, "post", f"/api/v1/users/nobody/certificates/{issued.pk}/revoke/", {}).status_code == 404
    assert Credential.objects.filter(pk=issued.pk).exists()
