"""The API's contract: every operation in the OpenAPI description, called as each kind of caller,
answers the expected status, with a body the description allows.

The operations are read from the served description, so one added later without an entry in
``EXPECTED`` fails here until someone decides who may call it.
"""

import json

import pytest
from django.test import Client
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from certs.x509 import sha1_thumbprint
from tests.api_setup import Cast, cast_fixture  # noqa: F401 - the fixture
from tests.pki import crl_pem, make_client, make_crl, make_intermediate, make_root

pytestmark = pytest.mark.django_db

IDENTITIES = ["anonymous", "end user by certificate", "end user by token", "admin by certificate", "admin by token"]
ADMINS = {"admin by certificate", "admin by token"}
END_USERS = {"end user by certificate", "end user by token"}

# What an administrator's call answers; anonymous callers get 401 and end users 403, except:
EXPECTED = {
    "whoami": 200,
    "users_list": 200,
    "users_create": 201,
    "users_read": 200,
    "users_update": 200,
    "users_delete": 200,
    "users_deletion_preview": 200,
    "users_deactivate": 200,
    "users_set_password": 200,
    "policies_read": 200,
    "policies_set": 200,
    "certificates_list": 200,
    "certificates_add": 201,
    "certificates_read": 200,
    "certificates_remove": 200,
    "certificates_import": 201,
    "certificates_issue": 201,
    "certificates_revoke": 200,
    "roots_list": 200,
    "roots_add": 201,
    "roots_remove": 200,
    "roots_bundle": 200,
    "intermediates_list": 200,
    "intermediates_add": 201,
    "intermediates_remove": 200,
    "cas_list": 200,
    "cas_add": 201,
    "cas_remove": 200,
    "match_cn_read": 200,
    "match_cn_set": 200,
    "org_ca_read": 200,
    "org_ca_create": 201,
    "tank_list": 200,
    "tank_accept": 200,
    "tank_assign": 200,
    "tank_remove": 200,
    "crls_list": 200,
    "crls_add": 201,
    "crls_read": 200,
    "crls_remove": 200,
    "revocation_read": 200,
    "revocation_set": 200,
    "revocation_ca_set": 200,
    "revocation_ca_remove": 200,
    "check": 200,
    "audit_list": 200,
    "transfers_list": 200,
    "users_transfers_list": 200,
}
# Anyone may call these.
PUBLIC = {"whoami"}
# An end user may call these about themselves (their own username in the address).
OWN = {"users_read", "policies_read", "certificates_list", "certificates_read", "users_transfers_list"}


@pytest.fixture(scope="module")
def description(django_db_blocker):
    with django_db_blocker.unblock():
        response = Client().get("/api/v1/schema/", {"format": "json"})
    assert response.status_code == 200
    return json.loads(response.content)


def operations(spec):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield operation["operationId"], method, path, operation


def _description():
    """The description as served, read once when the tests are collected (no database needed)."""
    from drf_spectacular.generators import SchemaGenerator

    return json.loads(json.dumps(SchemaGenerator().get_schema(request=None, public=True), default=str))


OPERATIONS = sorted((op_id, method, path) for op_id, method, path, _ in operations(_description()))


def test_every_operation_has_an_expectation(description):
    assert {op_id for op_id, *_ in operations(description)} == set(EXPECTED)
    assert len(EXPECTED) >= 35


def test_the_description_is_valid_openapi(description):
    validate(description)  # raises with the first problem found
    assert description["openapi"].startswith("3.1")
    schemes = description["components"]["securitySchemes"]
    assert {schemes[name]["type"] for name in schemes} == {"http", "mutualTLS", "apiKey"}


def bodies(cast: Cast, spec) -> dict:
    """A valid request body for each operation that takes one."""
    return {
        "users_create": {"username": "partner", "full_name": "Partner Ltd", "email": "ops@partner.example"},
        "users_update": {"email": "rich@elsewhere.example"},
        "users_set_password": {"password": "a long enough passphrase 42"},
        "policies_set": {"mode": "cert"},
        "certificates_add": {"kind": "cn", "value": "Richard"},
        "certificates_import": {"pem": make_client("Rich laptop", spec.chug).pem.decode()},
        "certificates_issue": {"days": 30},
        "roots_add": {"pem": make_root("Another Root").pem.decode()},
        "intermediates_add": {"pem": make_intermediate("Another CA", spec.toot).pem.decode()},
        "cas_add": {"pem": spec.verisign.pem.decode()},
        "match_cn_set": {"on": True},
        "org_ca_create": {"cn": "Rotated Org CA", "rotate": True},
        "tank_accept": {},
        "tank_assign": {"user": "charlie"},
        "check": {"pem": spec.frank.pem.decode()},
        "crls_add": {"pem": crl_pem(make_crl(spec.toot)).decode()},
        "revocation_set": {"check": "crl"},
        "revocation_ca_set": {"check": "crl", "when_unknown": "allow", "grace_hours": 12},
        "certificates_revoke": {"reason": "key-compromise"},
    }


def address(cast: Cast, spec, op_id: str, path: str, who: str) -> str:
    username = "rich" if who in END_USERS and op_id in OWN else "alice" if who in END_USERS else "rich"
    values = {
        "username": username,
        "interface": "https",
        "id": cast.rich_credential.pk,
        "thumbprint": {"roots": spec.toot, "intermediates": spec.chug, "cas": spec.chug}.get(op_id.split("_")[0]),
    }
    if op_id.startswith("tank_"):
        values["id"] = cast.org_tank_entry.pk if op_id == "tank_assign" else cast.rich_tank_entry.pk
    if op_id == "certificates_revoke":
        values["id"] = cast.issued_credential().pk
    if op_id.startswith("crls_"):
        values["id"] = cast.crl.pk
    if op_id.startswith("revocation_ca_"):
        values["thumbprint"] = spec.toot if op_id == "revocation_ca_remove" else spec.chug
    for name, value in values.items():
        if value is not None and hasattr(value, "cert"):
            value = sha1_thumbprint(value.cert)
        path = path.replace("{" + name + "}", str(value))
    return path


def expected(op_id: str, who: str) -> int:
    if op_id in PUBLIC or who in ADMINS:
        return EXPECTED[op_id]
    if who == "anonymous":
        return 401
    return EXPECTED[op_id] if op_id in OWN else 403


def check_against_description(spec, operation, response):
    """The answer's status and media type are described, and its body fits the schema."""
    described = operation["responses"].get(str(response.status_code))
    assert described is not None, f"status {response.status_code} is not described"
    media_type = response["Content-Type"].split(";")[0]
    assert media_type in described.get("content", {}), f"{media_type} is not described"
    if media_type.endswith("json"):
        schema = {**described["content"][media_type]["schema"], "components": spec["components"]}
        OAS31Validator(schema).validate(json.loads(response.content))


@pytest.mark.parametrize("who", IDENTITIES)
@pytest.mark.parametrize(("op_id", "method", "path"), OPERATIONS, ids=[o[0] for o in OPERATIONS])
def test_operation(cast, spec, description, op_id, method, path, who):
    body = bodies(cast, spec).get(op_id)
    response = cast.call(who, method, address(cast, spec, op_id, path, who), body)
    assert response.status_code == expected(op_id, who), response.content[:600]
    operation = description["paths"][path][method]
    check_against_description(description, operation, response)
    if response.status_code >= 400:
        assert response["Content-Type"] == "application/problem+json"
        assert json.loads(response.content)["detail"]
    # An API client is given neither a session nor a CSRF cookie.
    assert not {"sessionid", "csrftoken"} & set(response.cookies)


# Writes that create things take an Idempotency-Key: every operation answering 201, and accepting
# a holding-tank entry (it creates a profile entry).
KEYED = {op_id for op_id, status in EXPECTED.items() if status == 201} | {"tank_accept", "tank_assign"}


def test_every_create_and_nothing_else_takes_an_idempotency_key(description):
    for op_id, _method, _path, operation in operations(description):
        headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
        assert ("Idempotency-Key" in headers) == (op_id in KEYED), op_id


CREATES = [o for o in OPERATIONS if o[0] in KEYED]


@pytest.mark.parametrize(("op_id", "method", "path"), CREATES, ids=[o[0] for o in CREATES])
def test_a_create_sent_again_with_its_key_is_answered_not_done_again(cast, spec, description, op_id, method, path):
    body = bodies(cast, spec).get(op_id)
    url = address(cast, spec, op_id, path, "admin by token")
    first = cast.call("admin by token", method, url, body, HTTP_IDEMPOTENCY_KEY=f"contract-{op_id}")
    again = cast.call("admin by token", method, url, body, HTTP_IDEMPOTENCY_KEY=f"contract-{op_id}")
    assert first.status_code == again.status_code == EXPECTED[op_id], again.content[:600]
    assert "Idempotent-Replayed" not in first and again["Idempotent-Replayed"] == "true"
    check_against_description(description, description["paths"][path][method], again)
    if op_id != "certificates_issue":  # the PKCS#12 is given once; the rest is the same
        assert json.loads(again.content) == json.loads(first.content)
