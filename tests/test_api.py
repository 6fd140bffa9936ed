"""The API's behaviour beyond the contract: tokens, problems, idempotency, sharing, rate limits,
paging and polling, no sessions, and one verdict whichever way a certificate is judged."""

import base64
import json
import re
from io import StringIO

import pytest
from cryptography.hazmat.primitives.serialization import pkcs12
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.models import IdempotentRequest
from audit.models import AuditEvent
from certs import flows, tank, verdicts
from certs.models import Credential
from certs.x509 import format_thumbprint, sha1_thumbprint
from tests.api_setup import bearer, cast_fixture, certificate_headers  # noqa: F401 - the fixture
from tests.conftest import ACTOR
from tests.pki import DAY, NOW, make_client
from users import tokens
from users.models import ApiToken, User

pytestmark = pytest.mark.django_db


def body(response) -> dict:
    return json.loads(response.content)


def command(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


# --- tokens -------------------------------------------------------------------------------------


def test_a_token_made_on_the_command_line_is_printed_once_and_kept_as_a_digest(cast):
    out = command("users", "token", "create", "rich", "--name", "partner onboarding", "--expires-days", "30")
    raw = out.strip().splitlines()[-1]
    assert re.fullmatch(r"mft_[A-Za-z0-9]{12}_[A-Za-z0-9_-]{43}", raw)
    row = ApiToken.objects.get(name="partner onboarding")
    assert raw not in json.dumps(list(ApiToken.objects.values()), default=str)
    assert row.digest != raw and len(row.digest) == 64
    listed = json.loads(command("users", "token", "list", "rich", "--json"))
    assert {t["name"] for t in listed} == {"rich's script", "partner onboarding"}
    assert raw not in json.dumps(listed) and raw[4:16] not in json.dumps(listed)
    assert body(Client().get("/api/v1/whoami/", **bearer(raw)))["username"] == "rich"


def test_a_revoked_expired_or_mistyped_token_is_refused_with_its_reason(cast):
    raw = cast.rich_token
    mistyped = raw[:-1] + ("A" if raw[-1] != "A" else "B")
    refused = Client().get("/api/v1/whoami/", **bearer(mistyped))
    assert refused.status_code == 401 and "not known" in body(refused)["detail"]
    token = ApiToken.objects.get(user=cast.rich)
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now())
    assert "expired" in body(Client().get("/api/v1/whoami/", **bearer(raw)))["detail"]
    ApiToken.objects.filter(pk=token.pk).update(expires_at=None)
    command("users", "token", "revoke", str(token.pk))
    refused = Client().get("/api/v1/whoami/", **bearer(raw))
    assert refused.status_code == 401 and "was revoked" in body(refused)["detail"]
    assert refused["WWW-Authenticate"].startswith("Bearer")
    assert AuditEvent.objects.filter(action="token.refused").count() == 3


def test_an_inactive_users_token_signs_nobody_on(cast):
    User.objects.filter(pk=cast.rich.pk).update(is_active=False)
    refused = Client().get("/api/v1/whoami/", **bearer(cast.rich_token))
    assert refused.status_code == 401 and "inactive" in body(refused)["detail"]


def test_a_token_acts_with_its_users_rights_and_no_more(cast):
    assert Client().get("/api/v1/users/rich/", **bearer(cast.rich_token)).status_code == 200
    for path in ("/api/v1/users/", "/api/v1/users/alice/", "/api/v1/audit/", "/api/v1/users/alice/certificates/"):
        assert Client().get(path, **bearer(cast.rich_token)).status_code == 403, path
    created = Client().post(
        "/api/v1/users/rich/certificates/", {"kind": "cn", "value": "Richard"}, **bearer(cast.rich_token)
    )
    assert created.status_code == 403
    assert not Credential.objects.filter(value="Richard").exists()


def test_an_end_user_learns_nothing_about_whether_another_user_exists(cast):
    known = Client().get("/api/v1/users/alice/", **bearer(cast.rich_token))
    unknown = Client().get("/api/v1/users/nobody-at-all/", **bearer(cast.rich_token))
    assert (known.status_code, body(known)["detail"]) == (unknown.status_code, body(unknown)["detail"])


def test_every_use_of_a_token_is_audited_and_counted(cast):
    for _ in range(4):
        Client().get("/api/v1/users/", **bearer(cast.alice_token))
    AuditEvent.objects.flush_repeats()
    (event,) = AuditEvent.objects.filter(action="token.use", detail__path="/api/v1/users/")
    assert (event.actor_name, event.repeats) == ("alice", 3)
    assert "admin script" in event.summary and cast.alice_token not in event.summary
    assert ApiToken.objects.get(user=cast.alice).last_used_at is not None


def test_many_refused_tokens_from_one_address_are_answered_429(cast):
    for _ in range(20):
        assert Client().get("/api/v1/whoami/", **bearer("mft_nonsense")).status_code == 401
    throttled = Client().get("/api/v1/whoami/", **bearer(cast.alice_token))
    assert throttled.status_code == 429 and int(throttled["Retry-After"]) > 0


def test_a_token_and_a_certificate_naming_different_users_are_refused(cast, spec):
    headers = {**certificate_headers(spec.frank), **bearer(cast.alice_token)}
    refused = Client().get("/api/v1/whoami/", **headers)
    assert refused.status_code == 401 and "different users" in body(refused)["detail"]


def test_tokens_are_made_and_revoked_in_the_browser(cast):
    User.objects.filter(pk=cast.rich.pk).update(https_mode="cert-or-password")  # a password session may go on
    browser = Client()
    browser.force_login(cast.rich)
    page = browser.post("/account/tokens/", {"name": "laptop script", "expires_days": "30"})
    assert page.status_code == 200, page.content.decode()[:3000]
    raw = re.search(r'id="new-token">(mft_[^<]+)<', page.content.decode()).group(1)
    assert body(Client().get("/api/v1/whoami/", **bearer(raw)))["username"] == "rich"
    token = ApiToken.objects.get(name="laptop script")
    assert raw not in browser.get("/account/tokens/").content.decode()
    browser.post(f"/account/tokens/{token.pk}/revoke/")
    assert Client().get("/api/v1/whoami/", **bearer(raw)).status_code == 401
    # Someone else's token is not theirs to revoke.
    other = ApiToken.objects.get(user=cast.alice)
    browser.post(f"/account/tokens/{other.pk}/revoke/")
    assert ApiToken.objects.get(pk=other.pk).revoked_at is None


# --- no session, CSRF for sessions ---------------------------------------------------------------


def test_api_clients_get_no_session_and_no_csrf_cookie(cast, spec):
    # A certificate whose user must also give the password: the API does not start a session
    # to wait for it.
    User.objects.filter(pk=cast.rich.pk).update(https_mode="cert-and-password")
    for headers in (
        bearer(cast.alice_token),
        certificate_headers(cast.alice_certificate),
        certificate_headers(spec.frank),
    ):
        response = Client().post("/api/v1/check/", {"pem": spec.frank.pem.decode()}, **headers)
        assert not response.cookies
    assert Session.objects.count() == 0


def test_a_browser_session_must_send_the_csrf_token_to_write(cast):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(cast.alice)
    assert browser.get("/api/v1/users/").status_code == 200
    refused = browser.post("/api/v1/users/", {"username": "sneaky"}, content_type="application/json")
    assert refused.status_code == 403 and "CSRF" in body(refused)["detail"]
    assert not User.objects.filter(username="sneaky").exists()


# --- problems -----------------------------------------------------------------------------------


def admin(cast, method, path, data=None, **extra):
    client = Client()
    kwargs = {**bearer(cast.alice_token), **extra}
    if data is not None:
        kwargs.update(data=json.dumps(data) if not isinstance(data, str) else data, content_type="application/json")
    return getattr(client, method)(path, **kwargs)


@pytest.mark.parametrize(
    ("raw", "status", "words"),
    [
        ("{not json", 400, "JSON parse error"),
        ("[1, 2]", 400, "must be an object"),
        ("[" * 100_000 + "]" * 100_000, 400, "nested too deeply"),
    ],
    ids=["broken", "not-an-object", "deep"],
)
def test_unreadable_bodies_are_400_problems(cast, raw, status, words):
    response = admin(cast, "post", "/api/v1/users/", raw)
    assert response.status_code == status and response["Content-Type"] == "application/problem+json"
    assert words in body(response)["detail"]


def test_a_bad_field_is_named(cast):
    response = admin(cast, "post", "/api/v1/users/rich/certificates/", {"kind": "thumbprint", "value": "3D17 CFF3"})
    problem = body(response)
    assert response.status_code == 400
    assert problem["errors"][0]["field"] == "value" and "40" in problem["errors"][0]["detail"]


def test_a_refusal_by_the_use_case_is_422_with_its_sentence(cast):
    response = admin(cast, "post", "/api/v1/org-ca/", {"cn": "Second CA"})
    assert response.status_code == 422
    assert body(response)["detail"].startswith("There is an org CA already")


def test_a_huge_body_is_refused_unread(cast):
    response = Client().post(
        "/api/v1/users/", data="{}", content_type="application/json", CONTENT_LENGTH=str(50 * 1024 * 1024)
    )
    assert response.status_code == 413 and "most this service accepts" in body(response)["detail"]


def test_unknown_addresses_and_methods_are_problems(cast):
    missing = admin(cast, "get", "/api/v1/no-such-thing/")
    assert missing.status_code == 404 and missing["Content-Type"] == "application/problem+json"
    wrong = admin(cast, "delete", "/api/v1/users/")
    assert wrong.status_code == 405 and body(wrong)["title"] == "Method not allowed"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=40) | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=8,
)
WRITES = [
    ("post", "/api/v1/users/"),
    ("patch", "/api/v1/users/rich/"),
    ("post", "/api/v1/users/rich/password/"),
    ("put", "/api/v1/users/rich/policies/https/"),
    ("post", "/api/v1/users/rich/certificates/"),
    ("post", "/api/v1/users/rich/certificates/import/"),
    ("post", "/api/v1/users/rich/certificates/issue/"),
    ("post", "/api/v1/roots/"),
    ("put", "/api/v1/match-cn/"),
    ("post", "/api/v1/org-ca/"),
    ("post", "/api/v1/tank/1/assign/"),
    ("post", "/api/v1/check/"),
]
FIELDS = [
    "username",
    "full_name",
    "email",
    "is_admin",
    "is_active",
    "password",
    "mode",
    "kind",
    "value",
    "pem",
    "file_base64",
    "cn",
    "days",
    "key_type",
    "on",
    "rotate",
    "user",
    "as_kind",
    "allow_shared",
    "username",
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(write=st.sampled_from(WRITES), data=st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=5))
def test_no_body_makes_the_api_answer_500(cast, write, data):
    method, path = write
    response = admin(cast, method, path, data)
    assert response.status_code < 500, response.content[:500]
    if response.status_code >= 400:
        assert body(response)["detail"]


def test_bad_query_parameters_are_400(cast):
    for query in ("cursor=%%%", "cursor=WyJ4Il0", "limit=0", "limit=abc"):
        assert admin(cast, "get", f"/api/v1/users/?{query}").status_code == 400, query
    for query in ("after_id=-1", "date_from=yesterday", "cursor=bm9wZQ", "after_id=1&cursor=x"):
        assert admin(cast, "get", f"/api/v1/audit/?{query}").status_code == 400, query


# --- sharing, idempotency, rate limits -----------------------------------------------------------


def test_an_entry_other_users_would_share_is_refused_until_allowed(cast, spec):
    thumbprint = format_thumbprint(sha1_thumbprint(spec.frank.cert))  # on rich's profile
    refused = admin(cast, "post", "/api/v1/users/charlie/certificates/", {"kind": "thumbprint", "value": thumbprint})
    problem = body(refused)
    assert refused.status_code == 409 and problem["type"] == "urn:mft:problem:shared-entry"
    assert problem["overlaps"][0]["username"] == "rich" and "allow_shared" in problem["detail"]
    assert not Credential.objects.filter(user=cast.charlie).exists()
    allowed = admin(
        cast,
        "post",
        "/api/v1/users/charlie/certificates/",
        {"kind": "thumbprint", "value": thumbprint, "allow_shared": True},
    )
    assert allowed.status_code == 201


@pytest.mark.parametrize(
    "record_as, kinds",
    [(None, ["thumbprint"]), ("thumbprint", ["thumbprint"]), ("cn", ["cn"]), ("both", ["cn", "thumbprint"])],
)
def test_an_import_records_what_it_is_asked_to_and_the_thumbprint_by_default(cast, spec, record_as, kinds):
    laptop = make_client("Charlie laptop", spec.chug)  # its CA is approved: its CN could count
    request = {"pem": laptop.pem.decode()} | ({"record_as": record_as} if record_as else {})
    response = admin(cast, "post", "/api/v1/users/charlie/certificates/import/", request)
    assert response.status_code == 201
    (imported,) = body(response)["imported"]
    assert (imported["thumbprint_added"], imported["cn_added"]) == ("thumbprint" in kinds, "cn" in kinds)
    assert sorted(Credential.objects.filter(user=cast.charlie).values_list("kind", flat=True)) == kinds


def test_an_import_refuses_an_unknown_choice_in_words(cast, spec):
    request = {"pem": make_client("Charlie laptop", spec.chug).pem.decode(), "record_as": "serial"}
    refused = admin(cast, "post", "/api/v1/users/charlie/certificates/import/", request)
    assert refused.status_code == 400
    assert "record_as" in json.dumps(body(refused)) and "not a valid choice" in json.dumps(body(refused))


def test_a_retried_create_with_the_same_key_creates_nothing_twice(cast):
    headers = {"HTTP_IDEMPOTENCY_KEY": "4b1d5c7e-partner-1"}
    first = admin(cast, "post", "/api/v1/users/", {"username": "partner1"}, **headers)
    again = admin(cast, "post", "/api/v1/users/", {"username": "partner1"}, **headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again["Idempotent-Replayed"] == "true" and body(again) == body(first)
    assert again["Location"] == first["Location"]
    assert User.objects.filter(username="partner1").count() == 1
    assert AuditEvent.objects.filter(action="user.create").count() == 1
    other = admin(cast, "post", "/api/v1/users/", {"username": "partner2"}, **headers)
    assert other.status_code == 422 and "another request" in body(other)["detail"]


def test_an_idempotency_key_is_its_senders_own(cast, alice):
    headers = {"HTTP_IDEMPOTENCY_KEY": "shared-key"}
    admin(cast, "post", "/api/v1/users/", {"username": "partner1"}, **headers)
    bob = User.objects.create_user("bob", is_admin=True)
    _, bob_token = tokens.create_token(bob, "bob's script", ACTOR)
    answer = Client().post(
        "/api/v1/users/", {"username": "partner1"}, content_type="application/json", **headers, **bearer(bob_token)
    )
    assert "Idempotent-Replayed" not in answer  # bob's request ran (and was refused): nothing of alice's
    assert answer.status_code == 422 and "already taken" in body(answer)["detail"]
    assert IdempotentRequest.objects.filter(key="shared-key").count() == 1


def test_a_new_certificates_pkcs12_is_given_once_even_to_a_retry(cast):
    headers = {"HTTP_IDEMPOTENCY_KEY": "issue-rich-1"}
    first = body(admin(cast, "post", "/api/v1/users/rich/certificates/issue/", {"days": 30}, **headers))
    bundle = pkcs12.load_pkcs12(base64.b64decode(first["pkcs12_base64"]), first["password"].encode())
    assert bundle.key is not None and bundle.cert.certificate.subject.rfc4514_string() == "CN=rich"
    again = admin(cast, "post", "/api/v1/users/rich/certificates/issue/", {"days": 30}, **headers)
    assert body(again)["pkcs12_base64"] is None and body(again)["password"] is None
    assert body(again)["certificate"] == first["certificate"]
    assert Credential.objects.filter(user=cast.rich, source="issued").count() == 1
    assert "no-store" in again["Cache-Control"]
    stored = json.dumps(list(IdempotentRequest.objects.values("body")), default=str)
    assert first["pkcs12_base64"][:40] not in stored and first["password"] not in stored


def test_requests_over_the_rate_are_answered_429_with_retry_after(cast, settings):
    settings.MFT_API_RATE = "3/minute"
    answers = [admin(cast, "get", "/api/v1/users/") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert 0 < int(answers[-1]["Retry-After"]) <= 60
    assert body(answers[-1])["retry_after"] == int(answers[-1]["Retry-After"])


# --- paging and polling -------------------------------------------------------------------------


def test_the_user_list_pages_by_cursor_and_searches(cast):
    for number in range(7):
        User.objects.create_user(f"partner{number}", full_name=f"Partner {number}")
    seen, url = [], "/api/v1/users/?limit=3"
    while url:
        page = body(admin(cast, "get", url.replace("http://testserver", "")))
        seen += [u["username"] for u in page["results"]]
        url = page["next"]
    assert seen == sorted(seen, key=str.casefold) and len(seen) == len(set(seen)) == 10
    found = body(admin(cast, "get", "/api/v1/users/?search=PARTNER%203"))["results"]
    assert [u["username"] for u in found] == ["partner3"]


def test_a_siem_polls_the_audit_log_without_missing_an_event(cast, monkeypatch):
    from api.views import audit

    monkeypatch.setattr(audit, "SETTLE", timezone.timedelta(0))
    first = body(admin(cast, "get", "/api/v1/audit/?after_id=0&limit=5&action=credential.add"))
    assert [e["action"] for e in first["results"]] == ["credential.add"] * 2
    admin(cast, "post", "/api/v1/users/rich/certificates/", {"kind": "cn", "value": "Richard"})
    second = body(admin(cast, "get", first["next"].replace("http://testserver", "")))
    assert [e["summary"] for e in second["results"]] == ["Added CN Richard to rich's profile."]
    third = body(admin(cast, "get", second["next"].replace("http://testserver", "")))
    assert third["results"] == [] and third["next"] == second["next"]


def test_polling_waits_for_events_to_settle(cast, monkeypatch):
    from api.views import audit

    monkeypatch.setattr(audit, "SETTLE", timezone.timedelta(hours=1))
    assert body(admin(cast, "get", "/api/v1/audit/"))["results"]  # the pages show every event at once
    polled = body(admin(cast, "get", "/api/v1/audit/?after_id=0"))
    assert polled["results"] == []  # pollers get none of them yet
    assert polled["next"].endswith("after_id=0")


# --- one verdict, three ways --------------------------------------------------------------------


def test_the_api_the_command_line_and_the_doctor_give_the_same_verdict(cast, spec, tmp_path):
    browser = Client()
    browser.force_login(cast.alice)
    cases = {
        "authenticates": (spec.frank, None),
        "connects only": (make_client("Unknown", spec.chug), None),
        "cannot connect": (spec.stranger, None),
        "approved but not installed": (spec.dick_by_verisign, None),
        "for a named user": (spec.frank, "charlie"),
    }
    categories = set()
    for name, (issued, username) in cases.items():
        path = tmp_path / f"{name}.pem"
        path.write_bytes(issued.pem)
        request = {"pem": issued.pem.decode(), **({"username": username} if username else {})}
        by_api = body(admin(cast, "post", "/api/v1/check/", request))
        by_command = json.loads(
            command("certs", "check", str(path), "--json", *(["--user", username] if username else []))
        )
        assert by_api == by_command, name
        page = browser.post("/doctor/", {"pasted": issued.pem.decode(), "username": username or ""}).content.decode()
        shown = re.search(r'id="verdict"[^>]*>([^<]+)<', page).group(1).strip()
        assert shown == by_api["category_text"], name
        if by_api["authenticate"]["ok"]:
            assert by_api["authenticate"]["user"] in page
        categories.add(by_api["category"])
    assert categories == {"authenticates", "connects_only", "cannot_connect"}


def test_a_nul_in_the_address_is_a_404_even_with_an_idempotency_key(cast):
    response = admin(
        cast, "post", "/api/v1/users/ri%00ch/certificates/", {"kind": "cn", "value": "X"}, HTTP_IDEMPOTENCY_KEY="k1"
    )
    assert response.status_code == 404 and response["Content-Type"] == "application/problem+json"
    assert not IdempotentRequest.objects.exists()  # a refused request keeps no answer


@pytest.mark.parametrize(
    ("args", "sentence"),
    [
        (("create", "nobody", "--name", "x"), "There is no user 'nobody'."),
        (("create", "rich", "--name", "x", "--expires-days", "0"), "A token expires after 1 to 3650 days."),
        (("create", "rich", "--name", "rich's script"), "rich has a token named 'rich's script' already."),
        (("create", "rich", "--name", " "), "Give the token a name"),
        (("revoke", "999"), "There is no API token with id 999."),
    ],
    ids=["unknown-user", "bad-expiry", "taken-name", "blank-name", "unknown-token"],
)
def test_the_token_commands_refuse_bad_input_in_one_sentence(cast, args, sentence):
    from django.core.management import CommandError

    with pytest.raises(CommandError) as refused:
        command("users", "token", *args)
    assert refused.value.returncode == 2 and sentence in str(refused.value)


def test_a_new_certificate_comes_in_the_legacy_pkcs12_format_when_asked(cast):
    answer = body(admin(cast, "post", "/api/v1/users/rich/certificates/issue/", {"pkcs12_format": "legacy"}))
    data = base64.b64decode(answer["pkcs12_base64"])
    assert pkcs12.load_pkcs12(data, answer["password"].encode()).key is not None
    assert b"\x2a\x86\x48\x86\xf7\x0d\x01\x0c\x01\x03" in data  # pbeWithSHAAnd3-KeyTripleDES-CBC
    refused = admin(cast, "post", "/api/v1/users/rich/certificates/issue/", {"pkcs12_format": "rc2"})
    assert refused.status_code == 400 and "pkcs12_format" in refused.content.decode()


def test_a_renewal_is_listed_and_accepted_with_replace(cast, spec):
    old = make_client("Renewed", spec.chug, not_after=NOW + 9 * DAY)
    flows.import_to_profile(cast.rich, [old.cert], ACTOR)
    renewal = make_client("Renewed", spec.chug, not_after=NOW + 400 * DAY)
    verdict = verdicts.judge(renewal.cert, username="rich")
    entry = tank.record_presentation(verdict, renewal.cert, "rich", "https", None)[0]
    listed = body(admin(cast, "get", "/api/v1/tank/?user=rich"))
    renewals = [e["renewal_of"] for e in listed if e["renewal_of"]]
    assert [r["thumbprint"] for r in renewals] == [format_thumbprint(sha1_thumbprint(old.cert))] * 2
    assert listed[0]["renewal_of"] is not None  # renewals first
    refused = admin(cast, "post", f"/api/v1/tank/{entry.pk}/accept/", {"replace": True, "keep_old_days": -1})
    assert refused.status_code == 400
    answer = admin(cast, "post", f"/api/v1/tank/{entry.pk}/accept/", {"replace": True, "keep_old_days": 3})
    assert answer.status_code == 200 and "as the renewal of" in body(answer)["message"]
    profile = body(admin(cast, "get", "/api/v1/users/rich/certificates/"))
    profile = profile["results"] if isinstance(profile, dict) else profile
    (replaced,) = [c for c in profile if c["value"] == format_thumbprint(sha1_thumbprint(old.cert))]
    assert replaced["remove_at"] is not None
