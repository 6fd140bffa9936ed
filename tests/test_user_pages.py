"""The admin pages for users, sign-on policies, interface defaults and the audit log, through
the test client against the real HTML."""

import datetime as dt
import html
import re

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.models import AuditEvent
from certs.models import Credential, CredentialKind
from certs.x509 import name_key
from users import flows
from users.models import InterfaceDefault, SignOnMode, User

pytestmark = pytest.mark.django_db

PASSWORD = "a sturdy enough passphrase"


@pytest.fixture
def admin(client, alice):
    client.force_login(alice)
    return client


def text(response) -> str:
    """The page as a person reads it: entities decoded."""
    return html.unescape(response.content.decode())


def words(response) -> str:
    """The page's text without tags, white space runs made one space."""
    return " ".join(re.sub(r"<[^>]+>", " ", text(response)).split()).replace(" .", ".")


def link(response, rel: str) -> str | None:
    found = re.search(rf'rel="{rel}" href="([^"]+)"', response.content.decode())
    return html.unescape(found.group(1)) if found else None


def messages_on(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def make_users(count: int, prefix="user", full_name="Bulk {i}", **extra) -> None:
    """Many users at once: bulk_create skips save(), so the comparison keys are set here."""
    users = []
    for i in range(count):
        username, name = f"{prefix}{i:04d}", full_name.format(i=i)
        users.append(
            User(
                username=username,
                username_key=name_key(username),
                full_name=name,
                full_name_key=name_key(name),
                email=f"{username}@bulk.example",
                password="!",
                **extra,
            )
        )
    User.objects.bulk_create(users)


def snapshot():
    """Everything the pages could change."""
    return (
        list(User.objects.order_by("pk").values()),
        list(InterfaceDefault.objects.order_by("pk").values()),
        AuditEvent.objects.count(),
    )


# --- access ------------------------------------------------------------------------------------

PAGES = [
    ("users:list", []),
    ("users:create", []),
    ("users:detail", ["rich"]),
    ("users:edit", ["rich"]),
    ("users:password", ["rich"]),
    ("users:policy", ["rich", "https"]),
    ("users:policy", ["rich", "ftps"]),
    ("users:defaults", []),
    ("users:defaults-apply", []),
    ("users:audit", []),
]
PAGE_IDS = [f"{name}{'-' + args[-1] if len(args) > 1 else ''}" for name, args in PAGES]


@pytest.mark.parametrize(("name", "args"), PAGES, ids=PAGE_IDS)
def test_anonymous_visitors_are_sent_to_sign_in(client, rich, name, args):
    url = reverse(name, args=args)
    for response in (client.get(url), client.post(url)):
        assert response.status_code == 302
        assert response["Location"] == f"/accounts/login/?next={url}"


@pytest.mark.parametrize(("name", "args"), PAGES, ids=PAGE_IDS)
def test_an_end_user_is_refused_and_changes_nothing(client, rich, name, args):
    client.force_login(rich)
    before = snapshot()
    url = reverse(name, args=args)
    assert client.get(url).status_code == 403
    posted = {"username": "sneaky", "mode": "cert", "https_mode": "cert", "ftps_mode": "cert", "is_admin": "on"}
    assert client.post(url, posted).status_code == 403
    assert snapshot() == before


@pytest.mark.parametrize(("name", "args"), PAGES, ids=PAGE_IDS)
def test_an_admin_gets_every_page(admin, rich, name, args):
    response = admin.get(reverse(name, args=args))
    assert response.status_code == 200
    assert "<h1" in response.content.decode()


@pytest.mark.parametrize(("name", "args"), PAGES, ids=PAGE_IDS)
def test_getting_a_page_never_changes_anything(admin, rich, name, args):
    before = snapshot()
    url = reverse(name, args=args)
    # Query strings shaped like form posts must not act either.
    admin.get(url, {"username": "sneaky", "mode": "cert", "https_mode": "cert", "ftps_mode": "cert"})
    assert snapshot() == before


def test_a_post_without_the_csrf_token_is_refused(alice, rich):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    before = snapshot()
    response = client.post(reverse("users:policy", args=["rich", "https"]), {"mode": "cert"})
    assert response.status_code == 403
    assert snapshot() == before


def test_other_methods_are_not_allowed(admin, rich):
    assert admin.put(reverse("users:edit", args=["rich"])).status_code == 405
    assert admin.post(reverse("users:list")).status_code == 405
    assert admin.post(reverse("users:audit")).status_code == 405


# --- user list ---------------------------------------------------------------------------------


def test_the_list_shows_each_user_with_badges_and_sign_on_modes(admin, rich, charlie):
    charlie.is_active = False
    charlie.save()
    rich.https_mode = SignOnMode.CERT
    rich.save()
    response = admin.get(reverse("users:list"))
    page = text(response)
    assert 'href="/user/rich/">rich</a>' in page
    assert "rich@example.com" in page and "Charlie Outsider" in page
    row = re.search(r"<tr>\s*<td><a href=\"/user/rich/\">.*?</tr>", page, re.S).group(0)
    assert "Client certificate required" in row and "Password only" in row
    alice_row = re.search(r"<tr>\s*<td><a href=\"/user/alice/\">.*?</tr>", page, re.S).group(0)
    assert ">admin</span>" in alice_row and "inactive" not in alice_row
    charlie_row = re.search(r"<tr>\s*<td><a href=\"/user/charlie/\">.*?</tr>", page, re.S).group(0)
    assert ">inactive</span>" in charlie_row and ">admin<" not in charlie_row
    assert "3 users in all" in page
    assert f'href="{reverse("users:create")}">Create user</a>' in page


@pytest.mark.parametrize(
    ("query", "found", "not_found"),
    [
        ("ric", ["rich"], ["alice", "charlie"]),
        ("RICH", ["rich"], ["alice", "charlie"]),
        ("  outsider ", ["charlie"], ["rich", "alice"]),  # full name, case and spaces ignored
        ("rich@example", ["rich"], ["alice", "charlie"]),  # email
        ("Admin", ["alice"], ["rich", "charlie"]),
    ],
)
def test_search_matches_username_full_name_or_email(admin, rich, charlie, query, found, not_found):
    page = text(admin.get(reverse("users:list"), {"q": query}))
    for username in found:
        assert f'href="/user/{username}/"' in page
    for username in not_found:
        assert f'href="/user/{username}/"' not in page


def test_a_search_with_no_results_says_so(admin, rich):
    response = admin.get(reverse("users:list"), {"q": "nobody-like-this"})
    assert response.status_code == 200
    assert "No user's username, full name or email contains “nobody-like-this”." in text(response)
    assert "<table" not in text(response)


def test_search_treats_wildcards_literally(admin, rich):
    page = text(admin.get(reverse("users:list"), {"q": "%"}))
    assert 'href="/user/rich/"' not in page


def walk(client, url, params=None, rel="next"):
    """Follow Next (or Previous) links from ``url``; the usernames of each page, in order."""
    pages = []
    response = client.get(url, params or {})
    while True:
        assert response.status_code == 200 and len(pages) < 100, "the links go round in circles"
        pages.append(re.findall(r'<td><a href="/user/([^/]+)/">', response.content.decode()))
        following = link(response, rel)
        if following is None:
            return pages, response
        response = client.get(following)


def test_pagination_walks_forward_and_back_across_hundreds_of_users(admin):
    make_users(260)
    expected = sorted(User.objects.values_list("username_key", flat=True))
    assert len(expected) == 261

    pages, last = walk(admin, reverse("users:list"))
    assert [len(p) for p in pages] == [50, 50, 50, 50, 50, 11]
    assert [u for p in pages for u in p] == expected
    assert link(last, "next") is None and "Next »" in text(last)

    back, first = walk(admin, link(last, "prev"), rel="prev")
    assert back == pages[-2::-1]
    assert link(first, "prev") is None


def test_the_first_page_has_no_previous_link_and_the_last_no_next(admin, rich):
    response = admin.get(reverse("users:list"))
    assert link(response, "prev") is None and link(response, "next") is None


def test_pagination_works_with_the_longest_usernames(admin):
    # Case folding makes the key longer than the username: 'ß' is keyed as 'ss'.
    make_users(60, prefix="ß" * 146)
    pages, _ = walk(admin, reverse("users:list"))
    assert [len(p) for p in pages] == [50, 11]


def test_a_page_deep_in_the_list_costs_no_offset_and_no_more_queries(admin):
    make_users(300)
    url = reverse("users:list")
    with CaptureQueriesContext(connection) as first:
        admin.get(url)
    with CaptureQueriesContext(connection) as deep:
        response = admin.get(url, {"after": "user0280"})
    assert re.findall(r'<td><a href="/user/([^/]+)/">', response.content.decode())[0] == "user0281"
    sql = " ".join(q["sql"] for q in deep.captured_queries).upper()
    assert "OFFSET" not in sql
    assert len(deep.captured_queries) <= len(first.captured_queries) + 1


def test_search_results_paginate_and_keep_the_search(admin):
    make_users(120, prefix="smith", full_name="Jo Smith {i}")
    make_users(80, prefix="jones", full_name="Al Jones {i}")
    pages, _ = walk(admin, reverse("users:list"), {"q": "SMITH"})
    assert [len(p) for p in pages] == [50, 50, 20]
    assert all(u.startswith("smith") for p in pages for u in p)
    assert len({u for p in pages for u in p}) == 120


@pytest.mark.parametrize(
    "params",
    [
        {"after": "zzzz"},
        {"before": "0"},
        {"after": "a", "before": "b"},
        {"after": "x" * 500},
        {"q": "x" * 500},
        {"q": "nul\x00here"},
    ],
)
def test_a_tampered_page_link_gives_a_page_not_an_error(admin, rich, params):
    response = admin.get(reverse("users:list"), params)
    assert response.status_code == 200
    page = words(response)
    assert (
        "Back to the first page" in page
        or "Ensure this value has at most 200 characters" in page
        or ("Null characters are not allowed." in page)
    )


# --- create ------------------------------------------------------------------------------------


def create(client, **fields):
    data = {"username": "newbie", "full_name": "New Bie", "email": "newbie@example.com", **fields}
    return client.post(reverse("users:create"), data)


def test_creating_a_user_goes_to_the_profile_and_is_audited(admin, alice):
    InterfaceDefault.objects.create(interface="ftps", mode=SignOnMode.CERT)
    response = create(admin, password1=PASSWORD, password2=PASSWORD, is_admin="on")
    assert response.status_code == 302
    assert response["Location"] == "/user/newbie/"
    user = User.objects.get(username="newbie")
    assert user.is_admin and user.check_password(PASSWORD)
    assert (user.full_name, user.email, user.https_mode, user.ftps_mode) == (
        "New Bie",
        "newbie@example.com",
        "password",
        "cert",
    )
    event = AuditEvent.objects.get(action="user.create")
    assert (event.actor, event.target_user, event.source_address) == (alice, user, "127.0.0.1")
    assert "Created administrator 'newbie'." in messages_on(admin.get(response["Location"]))


def test_a_user_may_be_created_without_a_password(admin):
    assert create(admin).status_code == 302
    user = User.objects.get(username="newbie")
    assert not user.has_usable_password() and not user.is_admin


def test_a_unicode_username_reaches_its_profile(admin):
    response = create(admin, username="Zoë")
    assert response.status_code == 302
    assert admin.get(response["Location"]).status_code == 200


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"username": "bad name!"}, "A username may contain only letters, digits and the characters @ . + - _"),
        ({"username": ""}, "Enter a username."),
        ({"username": ".."}, "A username cannot consist of dots only."),
        ({"username": "x" * 151}, "Ensure this value has at most 150 characters (it has 151)."),
        ({"username": "RICH"}, "The username 'RICH' is already taken."),
        ({"username": " Rich "}, "The username 'Rich' is already taken."),
        ({"password1": PASSWORD, "password2": PASSWORD + "x"}, "The two password fields didn’t match."),
        ({"password1": PASSWORD, "password2": ""}, "Enter the password twice, or leave both boxes empty."),
        ({"password1": "short", "password2": "short"}, "This password is too short."),
        ({"password1": "password123", "password2": "password123"}, "This password is too common."),
        ({"password1": "newbie1234", "password2": "newbie1234"}, "The password is too similar to the username."),
        ({"email": "not an address"}, "Enter an email address such as name@example.com."),
        ({"full_name": "y" * 201}, "Ensure this value has at most 200 characters (it has 201)."),
        ({"full_name": "RICH"}, "'RICH' is the username of user 'rich'."),
    ],
)
def test_creating_a_user_refuses_bad_input_in_plain_words(admin, rich, fields, error):
    before = snapshot()
    response = create(admin, **fields)
    assert response.status_code == 200
    assert error in text(response)
    assert "is-invalid" in response.content.decode()
    assert snapshot() == before


# --- profile -----------------------------------------------------------------------------------


def test_the_profile_shows_details_and_the_user_authentication_section(admin, rich):
    rich.ftps_mode = SignOnMode.CERT_AND_PASSWORD
    rich.save()
    Credential.objects.create(user=rich, kind=CredentialKind.CN, value="Dick")
    Credential.objects.create(user=rich, kind=CredentialKind.THUMBPRINT, value="A" * 40)
    response = admin.get(reverse("users:detail", args=["rich"]))
    page = text(response)
    assert "User Profile" in page
    assert "rich@example.com" in page and "Rich" in page
    assert f'href="{reverse("users:edit", args=["rich"])}">Edit</a>' in page
    assert f'href="{reverse("users:password", args=["rich"])}">Set password</a>' in page

    section = page[page.index("User Authentication") :]
    assert re.search(
        r"HTTPS</th><td>Password only</td><td><a href=\"/user/rich/policy/https/\">HTTP Policy</a>", section
    )
    assert re.search(
        r"FTPS</th><td>Client certificate and password</td><td><a href=\"/user/rich/policy/ftps/\">FTP Policy</a>",
        section,
    )
    assert re.search(r"Accepted client certificates</dt><dd[^>]*>2</dd>", section)
    assert re.search(r"Pending in the holding tank</dt><dd[^>]*>0</dd>", section)
    certs_url = reverse("certs:edit-client-certs", args=["rich"])
    assert f'href="{certs_url}">Edit SSL Client Certificates</a>' in section


def test_a_profile_is_found_whatever_the_case_of_the_username(admin, rich):
    assert admin.get("/user/RICH/").status_code == 200


@pytest.mark.parametrize("url", ["/user/nobody/", "/user/nobody/edit/", "/user/nobody/password/", "/user/a%00b/"])
def test_an_unknown_user_is_not_found(admin, url):
    response = admin.get(url)
    assert response.status_code == 404
    assert "There is no user" in text(response)


def test_posting_to_an_unknown_user_is_not_found(admin):
    before = snapshot()
    assert admin.post("/user/nobody/edit/", {"full_name": "x"}).status_code == 404
    assert admin.post("/user/nobody/password/", {"new_password1": PASSWORD}).status_code == 404
    assert admin.post("/user/nobody/policy/https/", {"mode": "cert"}).status_code == 404
    assert snapshot() == before


# --- edit --------------------------------------------------------------------------------------


def edit(client, username="rich", **fields):
    data = {"full_name": "Rich", "email": "rich@example.com", "is_active": "on", **fields}
    return client.post(reverse("users:edit", args=[username]), data)


def test_the_edit_form_starts_from_the_users_values(admin, rich):
    page = text(admin.get(reverse("users:edit", args=["rich"])))
    assert 'value="rich@example.com"' in page and 'value="Rich"' in page


def test_editing_a_user_saves_and_audits_what_changed(admin, alice, rich):
    response = edit(admin, email="r@example.org", full_name="Richard")
    assert response.status_code == 302 and response["Location"] == "/user/rich/"
    rich.refresh_from_db()
    assert (rich.email, rich.full_name, rich.full_name_key) == ("r@example.org", "Richard", "richard")
    event = AuditEvent.objects.get(action="user.update")
    assert (
        event.summary
        == "Changed rich's full name from Rich to Richard and email from rich@example.com to r@example.org."
    )
    assert (event.actor, event.target_user, event.source_address) == (alice, rich, "127.0.0.1")
    assert event.detail["email"] == {"from": "rich@example.com", "to": "r@example.org"}
    assert event.summary in messages_on(admin.get("/user/rich/"))


def test_a_full_name_that_is_another_users_username_is_refused(admin, rich, charlie):
    before = snapshot()
    response = edit(admin, full_name="Charlie")
    assert response.status_code == 200
    assert "'Charlie' is the username of user 'charlie'." in text(response)
    assert snapshot() == before


def test_an_admin_may_promote_and_deactivate_another_user(admin, rich):
    edit(admin, is_active="", is_admin="on")
    rich.refresh_from_db()
    assert rich.is_admin and not rich.is_active
    assert AuditEvent.objects.get(action="user.update").summary == "Made rich an administrator. Deactivated rich."


def test_saving_without_changes_changes_and_audits_nothing(admin, rich):
    before = snapshot()
    response = edit(admin)
    assert response.status_code == 302
    assert snapshot() == before
    assert "Nothing changed for rich." in messages_on(admin.get("/user/rich/"))


def test_editing_refuses_a_bad_email(admin, rich):
    before = snapshot()
    response = edit(admin, email="rich at example")
    assert response.status_code == 200
    assert "Enter an email address such as name@example.com." in text(response)
    assert snapshot() == before


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"is_admin": ""}, "You cannot remove your own administrator flag; ask another administrator to do it."),
        ({"is_admin": "on", "is_active": ""}, "You cannot deactivate yourself; ask another administrator to do it."),
    ],
)
def test_an_admin_cannot_demote_or_deactivate_themselves(admin, alice, fields, error):
    before = snapshot()
    response = edit(admin, username="alice", full_name="Alice Admin", email="", **{"is_admin": "on", **fields})
    assert response.status_code == 200
    assert error in text(response)
    assert snapshot() == before
    assert admin.get(reverse("users:list")).status_code == 200


def test_an_admin_may_demote_another_admin(admin):
    bob = User.objects.create_user("bob", is_admin=True)
    assert edit(admin, username="bob", full_name="", email="").status_code == 302
    bob.refresh_from_db()
    assert not bob.is_admin


# --- password ----------------------------------------------------------------------------------


def test_setting_a_password_is_audited(admin, alice, rich):
    url = reverse("users:password", args=["rich"])
    response = admin.post(url, {"new_password1": PASSWORD, "new_password2": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/user/rich/"
    rich.refresh_from_db()
    assert rich.check_password(PASSWORD)
    event = AuditEvent.objects.get(action="user.password")
    assert (event.actor, event.target_user, event.source_address) == (alice, rich, "127.0.0.1")
    assert PASSWORD not in str(event.detail) + event.summary


def test_an_admin_setting_their_own_password_stays_signed_in(admin, alice):
    url = reverse("users:password", args=["alice"])
    assert admin.post(url, {"new_password1": PASSWORD, "new_password2": PASSWORD}).status_code == 302
    assert admin.get(reverse("users:list")).status_code == 200


@pytest.mark.parametrize(
    ("first", "second", "error"),
    [
        (PASSWORD, PASSWORD + "!", "The two password fields didn’t match."),
        ("short", "short", "This password is too short."),
        ("1234567890123", "1234567890123", "This password is entirely numeric."),
        ("", "", "This field is required."),
    ],
)
def test_setting_a_password_refuses_bad_input(admin, rich, first, second, error):
    before = snapshot()
    response = admin.post(reverse("users:password", args=["rich"]), {"new_password1": first, "new_password2": second})
    assert response.status_code == 200
    assert error in text(response)
    assert snapshot() == before


# --- sign-on policy ----------------------------------------------------------------------------


def test_the_http_policy_page_offers_the_four_modes_and_links_to_the_certificates(admin, rich):
    rich.https_mode = SignOnMode.CERT_OR_PASSWORD
    rich.save()
    page = text(admin.get(reverse("users:policy", args=["rich", "https"])))
    assert "<h1" in page and "Edit HTTP Policy</h1>" in page
    for mode in SignOnMode:
        assert f'value="{mode.value}"' in page
    assert "Password only: the password signs on; certificates play no part." in page
    assert "a client certificate that authenticates the user is required; no password is asked for." in page
    assert "a client certificate that authenticates the user and the password are both required." in page
    assert re.search(r'value="cert-or-password"[^>]*checked', page)
    bottom = page[page.index("</form>") :]
    certs_url = reverse("certs:edit-client-certs", args=["rich"])
    assert f'href="{certs_url}">Edit SSL Client Certificates</a>' in bottom


def test_the_ftp_policy_page_is_titled_for_ftp(admin, rich):
    page = text(admin.get(reverse("users:policy", args=["rich", "ftps"])))
    assert "Edit FTP Policy</h1>" in page


@pytest.mark.parametrize("interface", ["https", "ftps"])
def test_choosing_a_mode_sets_it_and_is_audited(admin, alice, rich, interface):
    # rich has no certificate yet, so the page first says that "cert" would lock him out.
    asked = admin.post(reverse("users:policy", args=["rich", interface]), {"mode": "cert"})
    assert asked.status_code == 200
    assert "rich has no certificate on the profile, so cannot sign on at all." in text(asked)
    rich.refresh_from_db()
    assert rich.sign_on_mode(interface) == "password"
    response = admin.post(reverse("users:policy", args=["rich", interface]), {"mode": "cert", "confirm": "yes"})
    assert response.status_code == 302 and response["Location"] == "/user/rich/"
    rich.refresh_from_db()
    assert rich.sign_on_mode(interface) == "cert"
    event = AuditEvent.objects.get(action="user.policy")
    assert (event.actor, event.target_user, event.detail["interface"]) == (alice, rich, interface)
    assert event.summary in messages_on(admin.get("/user/rich/"))


def test_choosing_the_current_mode_changes_nothing(admin, rich):
    before = snapshot()
    assert admin.post(reverse("users:policy", args=["rich", "https"]), {"mode": "password"}).status_code == 302
    assert snapshot() == before


@pytest.mark.parametrize("mode", ["certificate", "", "CERT", "x" * 300])
def test_a_mode_posted_by_hand_that_is_not_a_mode_is_refused(admin, rich, mode):
    before = snapshot()
    response = admin.post(reverse("users:policy", args=["rich", "https"]), {"mode": mode})
    assert response.status_code == 200
    assert "is not a sign-on mode" in text(response) or "Choose a sign-on mode." in text(response)
    assert snapshot() == before


@pytest.mark.parametrize("interface", ["sftp", "HTTPS", "http"])
def test_an_unknown_interface_is_not_found(admin, rich, interface):
    url = f"/user/rich/policy/{interface}/"
    assert admin.get(url).status_code == 404
    assert admin.post(url, {"mode": "cert"}).status_code == 404


# --- interface defaults ------------------------------------------------------------------------


def test_the_defaults_page_shows_the_current_defaults(admin):
    InterfaceDefault.objects.create(interface="https", mode=SignOnMode.CERT)
    page = text(admin.get(reverse("users:defaults")))
    assert re.search(r'<option value="cert" selected>', page)
    assert f'href="{reverse("users:defaults-apply")}">Apply to all existing users…</a>' in page


def test_setting_a_default_applies_to_new_users_only_and_is_audited(admin, alice, rich):
    response = admin.post(reverse("users:defaults"), {"https_mode": "cert", "ftps_mode": "password"})
    assert response.status_code == 302
    assert flows.interface_defaults() == {"https": "cert", "ftps": "password"}
    rich.refresh_from_db()
    assert rich.https_mode == "password"
    event = AuditEvent.objects.get(action="defaults.set")  # FTPS did not change: one event
    assert event.actor == alice and event.detail == {"interface": "https", "mode": "cert"}
    assert create(admin, username="later").status_code == 302
    assert User.objects.get(username="later").https_mode == "cert"


def test_a_default_that_is_not_a_mode_is_refused(admin):
    before = snapshot()
    response = admin.post(reverse("users:defaults"), {"https_mode": "everything", "ftps_mode": "password"})
    assert response.status_code == 200
    assert "'everything' is not a sign-on mode" in text(response)
    assert snapshot() == before


def test_the_apply_confirmation_says_who_would_change_from_what_to_what(admin, rich, charlie):
    flows.set_interface_default("https", "cert", "test")
    charlie.https_mode = SignOnMode.CERT_AND_PASSWORD
    charlie.save()
    rich.ftps_mode = SignOnMode.CERT
    rich.save()
    before = snapshot()
    page = words(admin.get(reverse("users:defaults-apply")))
    assert "HTTPS: Client certificate required" in page
    # alice and rich have password; charlie has cert-and-password.
    assert "2 users would change from Password only to Client certificate required." in page
    assert "1 user would change from Client certificate and password to Client certificate required." in page
    assert "1 user would change from Client certificate required to Password only." in page
    assert snapshot() == before


def test_applying_the_defaults_changes_every_user_in_one_audited_step(admin, alice, rich, charlie):
    flows.set_interface_default("https", "cert-or-password", "test")
    make_users(30, ftps_mode=SignOnMode.CERT)
    response = admin.post(reverse("users:defaults-apply"), {"https_mode": "cert-or-password", "ftps_mode": "password"})
    assert response.status_code == 302
    assert set(User.objects.values_list("https_mode", "ftps_mode").distinct()) == {("cert-or-password", "password")}
    event = AuditEvent.objects.get(action="defaults.apply")
    assert event.actor == alice and event.source_address == "127.0.0.1"
    assert event.detail["https"]["changed"] == 33 and event.detail["ftps"]["changed"] == 30
    assert "HTTPS: 33 changed, FTPS: 30 changed" in " ".join(messages_on(admin.get(response["Location"])))


def test_applying_defaults_that_changed_meanwhile_is_refused(admin, rich):
    flows.set_interface_default("https", "cert", "test")
    before = snapshot()
    response = admin.post(reverse("users:defaults-apply"), {"https_mode": "password", "ftps_mode": "password"})
    assert response.status_code == 200
    assert "The defaults changed while this page was open" in text(response)
    assert 'value="cert"' in text(response)  # the page now confirms the defaults as they are
    assert snapshot() == before


def test_with_nothing_to_apply_the_confirmation_offers_no_button(admin, rich):
    page = text(admin.get(reverse("users:defaults-apply")))
    assert "Nothing to apply." in page
    assert '<form method="post">' not in page[page.index("<main") :]


def test_apply_defaults_to_all_returns_counts_and_leaves_matching_users_alone(alice, rich):
    flows.set_interface_default("ftps", "cert", "test")
    assert flows.apply_defaults_to_all(alice, "10.0.0.1") == {"https": 0, "ftps": 2}
    assert flows.apply_defaults_to_all(alice) == {"https": 0, "ftps": 0}


# --- audit log ---------------------------------------------------------------------------------


def event_at(when, action="test.event", actor="someone", target=None, summary="Something happened."):
    event = AuditEvent.objects.record(actor, action, summary, target=target, source_address="192.0.2.7")
    AuditEvent.objects.filter(pk=event.pk).update(at=when)
    return event


def rows(response) -> list[str]:
    return re.findall(r"<tr>\s*<td class=\"text-nowrap\">.*?</tr>", text(response), re.S)


def test_the_audit_log_shows_events_newest_first_with_who_where_and_whom(admin, alice, rich):
    admin.post(reverse("users:policy", args=["rich", "https"]), {"mode": "cert", "confirm": "yes"})
    admin.post(reverse("users:edit", args=["rich"]), {"full_name": "Richard", "email": "", "is_active": "on"})
    listed = rows(admin.get(reverse("users:audit")))
    assert len(listed) == 2
    assert "User changed" in listed[0] and "Sign-on mode changed" in listed[1]
    assert "user.update" not in listed[0]  # the code is for scripts; the page says it in words
    assert "alice" in listed[0] and "127.0.0.1" in listed[0]
    assert "Changed rich's full name from Rich to Richard" in listed[0]
    assert '<a href="/user/rich/">rich</a>' in listed[0]


def test_an_event_about_a_deleted_user_names_them_without_a_link(admin, charlie):
    flows.set_sign_on_mode(charlie, "https", "cert", "test")
    charlie.delete()
    (row,) = rows(admin.get(reverse("users:audit")))
    assert "charlie" in row and "/user/charlie/" not in row


def test_the_audit_log_filters_by_user_as_actor_or_target(admin, alice, rich, charlie):
    flows.set_sign_on_mode(rich, "https", "cert", alice)  # alice acts on rich
    flows.set_sign_on_mode(charlie, "https", "cert", "command line (root)")  # about charlie
    flows.set_interface_default("https", "cert", rich)  # rich acts (no target)
    for_rich = rows(admin.get(reverse("users:audit"), {"user": "RICH"}))
    assert len(for_rich) == 2 and not any("charlie" in r for r in for_rich)
    for_alice = rows(admin.get(reverse("users:audit"), {"user": "alice"}))
    assert len(for_alice) == 1 and "Set rich's HTTPS" in for_alice[0]
    assert rows(admin.get(reverse("users:audit"), {"user": "nobody"})) == []


def test_the_audit_log_filters_by_an_action_chosen_from_those_present(admin, rich):
    flows.set_sign_on_mode(rich, "https", "cert", "test")
    flows.set_interface_default("https", "cert", "test")
    response = admin.get(reverse("users:audit"), {"action": "defaults.set"})
    page = text(response)
    assert '<option value="defaults.set" selected>Default sign-on mode changed</option>' in page
    assert '<option value="user.policy">Sign-on mode changed</option>' in page
    assert [("Default sign-on mode changed" in r) for r in rows(response)] == [True]


def test_an_action_that_is_not_in_the_log_is_explained(admin, rich):
    response = admin.get(reverse("users:audit"), {"action": "nope"})
    assert response.status_code == 200
    assert "There are no 'nope' events in the log" in text(response)


def test_the_audit_log_date_filters_include_both_days(admin):
    tz = timezone.get_current_timezone()
    event_at(dt.datetime(2025, 3, 9, 23, 59, 59, tzinfo=tz), summary="before")
    event_at(dt.datetime(2025, 3, 10, 0, 0, 0, tzinfo=tz), summary="first day starts")
    event_at(dt.datetime(2025, 3, 11, 23, 59, 59, 999999, tzinfo=tz), summary="last day ends")
    event_at(dt.datetime(2025, 3, 12, 0, 0, 0, tzinfo=tz), summary="after")
    listed = rows(admin.get(reverse("users:audit"), {"date_from": "2025-03-10", "date_to": "2025-03-11"}))
    assert ["last day ends" in listed[0], "first day starts" in listed[1], len(listed)] == [True, True, 2]
    assert len(rows(admin.get(reverse("users:audit"), {"date_from": "2025-03-11"}))) == 2
    assert len(rows(admin.get(reverse("users:audit"), {"date_to": "2025-03-09"}))) == 1


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"date_from": "2025-02-30"}, "Enter a date such as 2025-01-31."),
        ({"date_from": "yesterday"}, "Enter a date such as 2025-01-31."),
        ({"date_from": "2025-03-02", "date_to": "2025-03-01"}, "The end date is before the start date."),
        ({"after": "garbage"}, "This page link is not valid"),
        ({"after": "99999999999999999999999.1"}, "This page link is not valid"),
        ({"after": "1.1", "before": "2.2"}, "This page link asks for two pages at once"),
    ],
)
def test_bad_audit_filters_are_explained(admin, params, error):
    response = admin.get(reverse("users:audit"), params)
    assert response.status_code == 200
    assert error in text(response)


@pytest.mark.parametrize(
    "params", [{"date_from": "0001-01-01", "date_to": "9999-12-31"}, {"date_to": "0001-01-01"}, {"user": "a\x00"}]
)
def test_extreme_audit_filters_give_a_page(admin, params):
    flows.set_interface_default("https", "cert", "test")
    assert admin.get(reverse("users:audit"), params).status_code == 200


def test_audit_pagination_walks_events_recorded_in_the_same_instant(admin):
    when = timezone.now()
    AuditEvent.objects.bulk_create(
        [AuditEvent(at=when, actor_name="bulk", action="test.bulk", summary=f"event {i}") for i in range(120)]
    )
    event_at(when - dt.timedelta(seconds=1), summary="the oldest")

    def summaries(response):
        return re.findall(r"<td[^>]*>(event \d+|the oldest)</td>", text(response))

    pages, response = [], admin.get(reverse("users:audit"), {"action": "test.bulk"})
    while True:
        pages.append(summaries(response))
        following = link(response, "next")
        if following is None:
            break
        assert "action=test.bulk" in following
        response = admin.get(following)
    assert [len(p) for p in pages] == [50, 50, 20]
    assert sorted(s for p in pages for s in p) == sorted(f"event {i}" for i in range(120))
    back = admin.get(link(response, "prev"))
    assert summaries(back) == pages[1]

    everything = admin.get(reverse("users:audit"), {"after": link(response, "prev").split("before=")[1]})
    assert "the oldest" in text(everything)


# --- no input a form accepts answers 500 -------------------------------------------------------

printable = st.text(st.characters(blacklist_categories=["Cs"]), max_size=40)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(username=printable, full_name=printable, email=printable, password=printable, query=printable)
def test_no_page_answers_500_to_any_input(admin, rich, username, full_name, email, password, query):
    # The test client re-raises any exception a view lets through, so a 500 fails here.
    responses = [
        create(admin, username=username, full_name=full_name, email=email, password1=password, password2=password),
        edit(admin, full_name=full_name, email=email),
        admin.get(reverse("users:list"), {"q": query, "after": username}),
        admin.get(reverse("users:audit"), {"user": username, "action": query, "date_from": email}),
        admin.post(reverse("users:policy", args=["rich", "https"]), {"mode": query}),
        admin.post(reverse("users:password", args=["rich"]), {"new_password1": password, "new_password2": password}),
    ]
    for response in responses:
        assert response.status_code in (200, 302)
    if responses[0].status_code == 302:
        assert admin.get(responses[0]["Location"]).status_code == 200


# --- the last administrator who can sign in -------------------------------------------------------


def test_the_last_administrator_cannot_lock_themselves_out(admin, alice):
    """alice (password only, no certificate) sets her own HTTPS mode to certificate-only."""
    url = reverse("users:policy", args=["alice", "https"])
    page = text(admin.post(url, {"mode": "cert"}))
    assert "This is you: the new mode applies to your own next sign-in." in page
    page = text(admin.post(url, {"mode": "cert", "confirm": "yes"}))
    assert "No administrator could sign in after this change" in page
    alice.refresh_from_db()
    assert alice.https_mode == "password"


def test_applying_defaults_cannot_lock_every_administrator_out(admin, alice):
    flows.set_interface_default("https", "cert", "test")
    response = admin.post(reverse("users:defaults-apply"), {"https_mode": "cert", "ftps_mode": "password"}, follow=True)
    assert "No administrator could sign in after this change" in text(response)
    alice.refresh_from_db()
    assert alice.https_mode == "password"


def test_another_administrator_who_can_sign_in_lets_the_change_through(admin, alice):
    User.objects.create_user("bob", "another long passphrase", is_admin=True)
    flows.set_sign_on_mode(alice, "https", "cert", alice)
    alice.refresh_from_db()
    assert alice.https_mode == "cert"


# --- deleting a user ----------------------------------------------------------------------------


def test_deleting_a_user_says_what_goes_with_them_and_keeps_the_audit(
    admin, rich, spec, settings, tmp_path, django_capture_on_commit_callbacks
):
    from audit.models import AuditEvent
    from certs import flows as cert_flows

    settings.MFT_FILES_DIR = tmp_path / "files"
    (tmp_path / "files" / "rich").mkdir(parents=True)
    (tmp_path / "files" / "rich" / "notes.txt").write_text("hello")
    cert_flows.add_thumbprint(rich, "3D17CFF3E27B127D2753A7F1873E2743783BFBD2", "test")
    url = reverse("users:delete", args=["rich"])
    page = text(admin.get(url))
    assert "Delete rich?" in page
    assert "1 client certificate entry on the profile." in page and "The home folder, with 1 file" in page
    assert User.objects.filter(username="rich").exists()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post(url, follow=True)
    assert "Deleted user 'rich'." in text(response)
    assert not User.objects.filter(username="rich").exists()
    assert not Credential.objects.exists()
    assert not (tmp_path / "files" / "rich").exists()
    event = AuditEvent.objects.get(action="user.delete")
    assert event.target_name == "rich" and AuditEvent.objects.filter(target_name="rich").count() >= 2


def test_an_administrator_cannot_delete_themselves_or_the_last_one_who_can_sign_in(admin, alice):
    response = admin.post(reverse("users:delete", args=["alice"]), follow=True)
    assert "You cannot delete yourself" in text(response)
    with pytest.raises(ValidationError, match="No administrator could sign in"):
        flows.delete_user(alice, "command line (root)")
    assert User.objects.filter(username="alice").exists()


def test_the_user_picker_suggests_users_by_username_or_full_name(admin, rich, charlie):
    found = admin.get(reverse("users:suggest"), {"q": "outsid"}).json()["users"]
    assert found == [{"username": "charlie", "full_name": "Charlie Outsider"}]
    assert admin.get(reverse("users:suggest"), {"q": ""}).json() == {"users": []}
    assert {u["username"] for u in admin.get(reverse("users:suggest"), {"q": "RI"}).json()["users"]} >= {"rich"}
