"""Names and entries two users would share: once a way for one user to sign on as another.

The review's repros: users bob1 and bob2 both "Bob Smith" (with Match CN on, a "Bob Smith"
certificate signed on as whichever username was given); `certs user alice add-cn rich`
silently accepted (rich's own certificate then signed on as alice, and rich's
certificate-only sign-on broke).
"""

import json
from io import StringIO
from urllib.parse import quote

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from certs import flows, tank, verdicts
from certs.models import Credential, Store
from certs.x509 import format_thumbprint, sha1_thumbprint
from tests.conftest import ACTOR, install
from tests.pki import make_client
from users import flows as user_flows
from users.models import User

pytestmark = pytest.mark.django_db


@pytest.fixture
def approved(spec, toot_installed):
    install(Store.APPROVED, spec.chug)
    flows.set_match_cn(True, ACTOR)


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def refused(*args) -> str:
    with pytest.raises(CommandError) as caught:
        run(*args)
    assert caught.value.returncode == 2
    return str(caught.value)


# --- a full name shared by two users -------------------------------------------------------------


def test_a_second_user_with_the_same_full_name_is_refused_naming_the_first(db):
    user_flows.create_user("bob1", ACTOR, full_name="Bob Smith")
    with pytest.raises(ValidationError, match="'bob  SMITH' is the full name of user 'bob1' already"):
        user_flows.create_user("bob2", ACTOR, full_name="bob  SMITH")
    bob3 = user_flows.create_user("bob3", ACTOR, full_name="Robert Smith")
    with pytest.raises(ValidationError, match="is the full name of user 'bob1' already"):
        user_flows.update_user(bob3, ACTOR, full_name="Bob Smith")


def test_a_full_name_two_users_share_signs_neither_on_by_match_cn(spec, approved):
    """Two users sharing a name from before the rule existed: the name identifies nobody."""
    bob1 = user_flows.create_user("bob1", ACTOR, full_name="Bob Smith")
    bob2 = user_flows.create_user("bob2", ACTOR, full_name="Someone Else")
    User.objects.filter(pk=bob2.pk).update(full_name="Bob Smith", full_name_key=bob1.full_name_key)
    certificate = make_client("Bob Smith", spec.chug).cert
    for username in ("bob1", "bob2", None):
        verdict = verdicts.judge(certificate, [spec.chug.cert], username=username)
        assert not verdict.authentication.ok, username
    reasons = " ".join(verdicts.judge(certificate, username="bob1").authentication.reasons)
    assert "also the username or full name of bob2, so it identifies nobody by this rule" in reasons


def test_a_unique_full_name_still_signs_its_user_on(spec, approved):
    user_flows.create_user("bob1", ACTOR, full_name="Bob Smith")
    verdict = verdicts.judge(make_client("Bob Smith", spec.chug).cert, username="bob1")
    assert verdict.authentication.rule == "match_cn"


# --- a CN or thumbprint another user's sign-on depends on ------------------------------------------


def test_a_cn_that_is_another_users_username_is_refused_on_the_command_line(spec, approved, rich, alice):
    rich_cert = make_client("rich", spec.chug).cert
    assert verdicts.judge(rich_cert).authentication.user == "rich"
    message = refused("certs", "user", "alice", "add-cn", "rich")
    assert "The CN 'rich' concerns rich too: the CN 'rich' is the username of user 'rich'." in message
    assert message.endswith("Give --allow-shared to share it anyway.")
    assert not Credential.objects.filter(user=alice).exists()
    # rich's certificate still signs rich on by itself, and never alice.
    assert verdicts.judge(rich_cert).authentication.user == "rich"
    assert not verdicts.judge(rich_cert, username="alice").authentication.ok
    assert "Added CN 'rich'" in run("certs", "user", "alice", "add-cn", "rich", "--allow-shared")


@pytest.mark.parametrize("other", ["full name", "profile CN"])
def test_a_cn_that_is_another_users_full_name_or_profile_cn_is_refused(rich, charlie, other):
    if other == "profile CN":
        flows.add_cn(charlie, "Dick", ACTOR)
        value, expected = "dick", "the CN 'dick' is on charlie's profile"
    else:
        value, expected = "Charlie Outsider", "the CN 'Charlie Outsider' is the full name of user 'charlie'"
    with pytest.raises(flows.SharedEntry, match=expected):
        flows.add_cn(rich, value, ACTOR)


def test_importing_or_accepting_a_shared_entry_is_refused_too(spec, approved, rich, charlie):
    rich_cert = make_client("rich", spec.chug)
    with pytest.raises(flows.SharedEntry, match="concerns rich too"):
        flows.import_to_profile(charlie, [rich_cert.cert], ACTOR)
    assert not Credential.objects.filter(user=charlie).exists()  # nothing, not even the thumbprint
    verdict = verdicts.judge(rich_cert.cert, username="charlie")
    entries = tank.record_presentation(verdict, rich_cert.cert, "charlie", "https", None)
    cn_entry = next(e for e in entries if e.kind == "cn")
    with pytest.raises(flows.SharedEntry):
        tank.accept_tank_entry(cn_entry.pk, ACTOR)
    tank.accept_tank_entry(cn_entry.pk, ACTOR, allow_shared=True)
    assert charlie.credentials.filter(kind="cn", value="rich").exists()


def test_a_thumbprint_whose_certificate_signs_another_user_on_is_refused(spec, toot_installed, rich, alice):
    flows.import_to_profile(rich, [spec.frank.cert], ACTOR)
    thumbprint = format_thumbprint(sha1_thumbprint(spec.frank.cert))
    message = refused("certs", "user", "alice", "add-thumbprint", thumbprint)
    assert f"The thumbprint {thumbprint} concerns rich too" in message


# --- the same in the browser: a confirmation that names the users ---------------------------------


@pytest.fixture
def admin(client, alice):
    client.force_login(alice)
    return client


def test_the_add_page_asks_before_sharing_and_names_the_users(admin, spec, approved, rich, charlie):
    url = reverse("certs:add-credential", args=["charlie"])
    page = admin.post(url, {"kind": "cn", "value": "Rich"})
    body = page.content.decode()
    assert page.status_code == 200 and "Add it to charlie&#x27;s profile although it concerns rich too?" in body
    assert "the CN &#x27;Rich&#x27; is the username of user &#x27;rich&#x27;" in body
    assert not Credential.objects.filter(user=charlie).exists()
    admin.post(url, {"kind": "cn", "value": "Rich", "allow_shared": "yes"})
    assert charlie.credentials.filter(kind="cn", value="Rich").exists()


def test_the_import_page_asks_before_sharing_and_imports_once_confirmed(admin, spec, approved, rich, charlie):
    from django.core.files.uploadedfile import SimpleUploadedFile

    rich_cert = make_client("rich", spec.chug)
    url = reverse("certs:import-certificates", args=["charlie"])
    page = admin.post(url, {"file": SimpleUploadedFile("rich.pem", rich_cert.pem)})
    assert "although it concerns rich too?" in page.content.decode()
    pem = rich_cert.pem.decode()
    assert pem.strip() in page.content.decode().replace("&#x2B;", "+").replace("&#x3D;", "=")
    admin.post(url, {"pem": pem, "allow_shared": "yes"})
    assert charlie.credentials.filter(kind="thumbprint").exists()


def test_the_org_tank_asks_before_assigning_a_shared_entry(admin, spec, toot_installed, rich, charlie):
    """With Match CN off, a certificate named "rich" signs nobody on and waits in the org tank;
    assigning it to charlie by CN would hand charlie a name that is rich's."""
    install(Store.APPROVED, spec.chug)
    rich_cert = make_client("rich", spec.chug)
    (entry,) = tank.record_presentation(verdicts.judge(rich_cert.cert), rich_cert.cert, None, "https", None)
    url = reverse("certs:assign-tank-entry", args=[entry.pk])
    form = {f"e{entry.pk}-username": "charlie", f"e{entry.pk}-as_kind": "cn"}
    page = admin.post(url, form)
    assert "Assign it to charlie although it concerns rich too?" in page.content.decode()
    assert not charlie.credentials.exists()
    admin.post(url, {**form, "allow_shared": "yes"})
    assert charlie.credentials.filter(kind="cn", value="rich").exists()


def test_a_sign_on_audit_names_no_shared_entry_when_sharing_was_refused(spec, approved, rich, alice):
    """Rich's certificate-only sign-on keeps working, because the sharing never happened."""
    rich.https_mode = "cert"
    rich.save()
    with pytest.raises(flows.SharedEntry):
        flows.add_cn(alice, "rich", ACTOR)
    headers = {"HTTP_X_SSL_CLIENT_CERT": quote(make_client("rich", spec.chug).pem.decode(), safe="")}
    assert json.loads(Client().get("/api/whoami", **headers).content)["username"] == "rich"
