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
from certs.models import Credential, TankEntry
from certs.x509 import format_thumbprint, sha1_thumbprint
from tests.api_setup import bearer, cast_fixture, certificate_headers  # noqa: F401 - the fixture
from tests.conftest import ACTOR
from tests.pki import DAY, NOW, make_client
from users import flows as user_flows
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
    ("post", "/api/v1/crls/"),
    ("put", "/api/v1/revocation/"),
    ("put", "/api/v1/revocation/3D17CFF3/"),
    ("post", "/api/v1/users/rich/certificates/1/revoke/"),
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
    "check",
    "when_unknown",
    "grace_hours",
    "reason",
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


# --- deleting a user ----------------------------------------------------------------------------


def test_deleting_a_user_removes_what_the_preview_lists_and_keeps_the_audit(
    cast, settings, django_capture_on_commit_callbacks
):
    assert admin(cast, "post", "/api/v1/users/rich/certificates/issue/", {"days": 30}).status_code == 201
    folder = settings.MFT_FILES_DIR / "rich"
    preview = admin(cast, "get", "/api/v1/users/rich/deletion/")
    assert preview.status_code == 200
    assert body(preview) == {
        "username": "rich",
        "removed": user_flows.what_goes_with(cast.rich),  # the sentences the confirmation page shows
        "profile_entries": 2,
        "issued_certificates": 1,
        "tank_entries": 2,  # the wanderer's certificate, by thumbprint and by CN
        "files": 1,
        "file_bytes": (folder / "invoices.csv").stat().st_size,
        "refused": None,
    }
    assert "2 client certificate entries on the profile (1 issued by the org CA)." in body(preview)["removed"]
    assert User.objects.filter(username="rich").exists() and folder.exists()  # the preview changed nothing
    entries = list(Credential.objects.filter(user=cast.rich).values_list("pk", flat=True))
    waiting = list(TankEntry.objects.filter(user=cast.rich).values_list("pk", flat=True))

    with django_capture_on_commit_callbacks(execute=True):
        deleted = admin(cast, "delete", "/api/v1/users/rich/")
    assert deleted.status_code == 200
    assert body(deleted)["message"].startswith("Deleted user 'rich'. 2 client certificate entries")
    assert not User.objects.filter(username="rich").exists() and not folder.exists()
    assert not Credential.objects.filter(pk__in=entries).exists()
    assert not TankEntry.objects.filter(pk__in=waiting).exists()
    event = AuditEvent.objects.get(action="user.delete")
    assert (event.actor_name, event.target_name) == ("alice", "rich")
    assert AuditEvent.objects.filter(target_name="rich").exclude(pk=event.pk).exists()  # the history is kept
    # What was transferred stays on record, by name.
    kept = body(admin(cast, "get", "/api/v1/transfers/?user=rich"))["results"]
    assert [t["id"] for t in kept] == [cast.rich_transfer.pk]
    gone = admin(cast, "delete", "/api/v1/users/rich/")
    assert gone.status_code == 404 and gone["Content-Type"] == "application/problem+json"


def test_an_administrator_cannot_delete_themselves_or_the_last_one_who_can_sign_in(cast):
    refused = admin(cast, "delete", "/api/v1/users/alice/")
    problem = body(refused)
    assert refused.status_code == 422 and refused["Content-Type"] == "application/problem+json"
    assert problem["type"] == "urn:mft:problem:refused" and problem["detail"].startswith("You cannot delete yourself")
    assert body(admin(cast, "get", "/api/v1/users/alice/deletion/"))["refused"] == problem["detail"]
    # bob is an administrator, but can sign in to nothing (no password, no certificate): alice is the last.
    bob = User.objects.create_user("bob", is_admin=True)
    _, bob_token = tokens.create_token(bob, "bob's script", ACTOR)
    by_bob = Client().delete("/api/v1/users/alice/", **bearer(bob_token))
    assert by_bob.status_code == 422
    assert body(by_bob)["detail"].startswith("No administrator could sign in after deleting alice")
    preview = body(Client().get("/api/v1/users/alice/deletion/", **bearer(bob_token)))
    assert preview["refused"] == body(by_bob)["detail"]
    assert User.objects.filter(username="alice").exists()
    assert not AuditEvent.objects.filter(action="user.delete").exists()


def test_end_users_delete_nobody_and_see_no_deletion_preview(cast, spec):
    for headers in (bearer(cast.rich_token), certificate_headers(spec.frank)):
        for method, path in (
            ("delete", "/api/v1/users/rich/"),
            ("delete", "/api/v1/users/alice/"),
            ("delete", "/api/v1/users/nobody-at-all/"),
            ("get", "/api/v1/users/rich/deletion/"),
            ("get", "/api/v1/users/alice/deletion/"),
        ):
            response = getattr(Client(), method)(path, **headers)
            assert response.status_code == 403, (method, path)
            assert response["Content-Type"] == "application/problem+json"
    assert Client().delete("/api/v1/users/rich/").status_code == 401
    assert User.objects.filter(username__in=["rich", "alice"]).count() == 2


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("delete", "/api/v1/users/nobody-at-all/"),
        ("get", "/api/v1/users/nobody-at-all/deletion/"),
        ("get", "/api/v1/users/nobody-at-all/transfers/"),
        ("delete", "/api/v1/users/ri%00ch/"),
        ("get", "/api/v1/users/ri%00ch/deletion/"),
    ],
)
def test_an_unknown_user_is_a_404_problem(cast, method, path):
    response = admin(cast, method, path)
    assert response.status_code == 404 and response["Content-Type"] == "application/problem+json"
    assert body(response)["detail"]


# --- transfers ----------------------------------------------------------------------------------


def record(user, path: str, *, interface="https", result="complete", direction="upload"):
    from files import flows as file_flows

    return file_flows.record_transfer(
        user,
        interface=interface,
        direction=direction,
        parts=(path,),
        size=100,
        sha256="ab" * 32,
        result=result,
        started_at=timezone.now(),
        reason="" if result == "complete" else "The client went away.",
    )


def test_administrators_list_transfers_with_the_pages_filters(cast):
    record(cast.charlie, "report.pdf", interface="ftps")
    failed = record(cast.charlie, "big.iso", interface="ftps", result="aborted", direction="download")
    listed = body(admin(cast, "get", "/api/v1/transfers/"))["results"]
    assert [t["id"] for t in listed] == [failed.pk, failed.pk - 1, cast.rich_transfer.pk]  # newest first
    mine = listed[-1]
    assert {k: mine[k] for k in ("user", "actor", "interface", "direction", "path", "size", "result")} == {
        "user": "rich",
        "actor": None,
        "interface": "https",
        "direction": "upload",
        "path": "/invoices.csv",
        "size": 21,
        "result": "complete",
    }
    assert mine["sha256"] == cast.rich_transfer.sha256 and mine["source_address"] == "192.0.2.10"
    assert listed[0]["sha256"] is None and listed[0]["reason"] == "The client went away."

    def ids(query):
        response = admin(cast, "get", f"/api/v1/transfers/?{query}")
        assert response.status_code == 200, response.content
        return [t["id"] for t in body(response)["results"]]

    today = timezone.localdate()
    assert ids("user=RICH") == [cast.rich_transfer.pk]  # as typed in any case, like the page
    assert ids("interface=ftps") == [failed.pk, failed.pk - 1]
    assert ids("user=charlie&interface=https") == []
    assert len(ids(f"date_from={today}&date_to={today}")) == 3
    assert ids(f"date_to={today - timezone.timedelta(days=1)}") == []
    assert ids("user=nobody-at-all") == []


def test_transfers_page_by_cursor_and_poll_after_an_id(cast, monkeypatch):
    from api.views import transfers

    for number in range(5):
        record(cast.charlie, f"file{number}.txt")
    seen, url = [], "/api/v1/transfers/?limit=2"
    while url:
        page = body(admin(cast, "get", url.replace("http://testserver", "")))
        seen += [t["id"] for t in page["results"]]
        url = page["next"]
    assert seen == sorted(seen, reverse=True) and len(set(seen)) == 6
    monkeypatch.setattr(transfers, "SETTLE", timezone.timedelta(0))
    polled = body(admin(cast, "get", f"/api/v1/transfers/?after_id={cast.rich_transfer.pk}&limit=3"))
    assert [t["id"] for t in polled["results"]] == sorted(seen)[1:4]
    again = body(admin(cast, "get", polled["next"].replace("http://testserver", "")))
    assert [t["id"] for t in again["results"]] == sorted(seen)[4:]


@pytest.mark.parametrize(
    ("query", "field", "words"),
    [
        ("interface=sftp", "interface", "Choose HTTPS or FTPS."),
        ("date_from=yesterday", "date_from", "Enter a date such as 2025-01-31."),
        ("date_from=2026-02-01&date_to=2026-01-01", "date_to", "before the start date"),
        ("user=" + "x" * 151, "user", "at most 150"),
        ("user=ri%00ch", "user", "Null characters are not allowed."),
        ("limit=0", "limit", "greater than or equal to 1"),
        ("after_id=-1", "after_id", "greater than or equal to 0"),
        ("cursor=bm9wZQ", "cursor", "not valid"),
        ("after_id=1&cursor=x", None, "not both"),
    ],
    ids=["interface", "date", "dates-reversed", "long-user", "nul", "limit", "after-id", "cursor", "both"],
)
def test_bad_transfer_queries_are_400_naming_the_field(cast, query, field, words):
    response = admin(cast, "get", f"/api/v1/transfers/?{query}")
    problem = body(response)
    assert response.status_code == 400 and response["Content-Type"] == "application/problem+json"
    assert words in problem["detail"]
    if field:
        assert field in {e["field"] for e in problem["errors"]}


def test_an_end_user_lists_the_transfers_in_their_own_folder_only(cast, spec):
    record(cast.charlie, "secret.txt")
    record(cast.rich, "by-alice.txt").__class__.objects.filter(path="by-alice.txt").update(actor_name="alice")
    for headers in (bearer(cast.rich_token), certificate_headers(spec.frank)):
        own = Client().get("/api/v1/users/rich/transfers/", **headers)
        assert own.status_code == 200
        assert {t["path"] for t in body(own)["results"]} == {"/invoices.csv", "/by-alice.txt"}
        assert Client().get("/api/v1/users/rich/transfers/?interface=ftps", **headers).json()["results"] == []
        for path in (
            "/api/v1/users/charlie/transfers/",
            "/api/v1/users/nobody-at-all/transfers/",
            "/api/v1/transfers/",
            "/api/v1/transfers/?user=rich",
        ):
            refused = Client().get(path, **headers)
            assert refused.status_code == 403 and refused["Content-Type"] == "application/problem+json", path
    assert Client().get("/api/v1/users/rich/transfers/").status_code == 401
    by_admin = body(admin(cast, "get", "/api/v1/users/charlie/transfers/"))["results"]
    assert [t["path"] for t in by_admin] == ["/secret.txt"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    path=st.sampled_from(["/api/v1/transfers/", "/api/v1/users/rich/transfers/", "/api/v1/audit/"]),
    query=st.dictionaries(
        st.sampled_from(["user", "interface", "date_from", "date_to", "after_id", "cursor", "limit", "action"]),
        st.text(max_size=30),
        max_size=4,
    ),
)
def test_no_query_makes_a_listing_answer_500(cast, path, query):
    response = Client().get(path, query, **bearer(cast.alice_token))
    assert response.status_code in (200, 400), response.content[:500]
    if response.status_code == 400:
        assert body(response)["detail"]


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
