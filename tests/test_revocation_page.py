"""The Revocation page: the org default policy, the policies of single CAs and the stored CRLs,
through the test client. Every change goes through the use cases the command line and the API
use; bad input gets a sentence, never a 500."""

import html
import re

import pytest
from cryptography import x509
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from audit.models import AuditEvent
from certs import crls, flows
from certs.loading import MAX_FILE_BYTES
from certs.models import Crl, RevocationPolicy, Store
from certs.x509 import sha1_thumbprint
from tests.pki import DAY, NOW, crl_der, crl_pem, make_crl, make_root

pytestmark = pytest.mark.django_db
ACTOR = "test suite"
PAGE = "/trust/revocation/"


@pytest.fixture
def admin_client(client, alice):
    client.force_login(alice)
    return client


def text(response) -> str:
    """The page's words, without its tags."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode())))


def upload(name, data):
    return SimpleUploadedFile(name, data)


def post_crl(client, name, data):
    return client.post(reverse("certs:crls-add"), {"file": upload(name, data)}, follow=True)


# --- access ----------------------------------------------------------------------------------


def test_the_page_is_for_administrators_only(client, rich, pki):
    assert client.get(PAGE).status_code == 302
    client.force_login(rich)
    assert client.get(PAGE).status_code == 403
    assert (
        client.post(reverse("certs:crls-add"), {"file": upload("a.crl", crl_der(make_crl(pki.chug)))}).status_code
        == 403
    )
    assert client.post(reverse("certs:revocation-default"), {"check": "off"}).status_code == 403
    assert not Crl.objects.exists() and not RevocationPolicy.objects.exists()


def test_the_page_is_in_the_trust_menu_and_linked_from_the_dashboard(admin_client, pki):
    assert 'href="/trust/revocation/"' in admin_client.get("/trust/cas/").content.decode()
    crls.add_crl_file(crl_der(make_crl(pki.chug, this_update=NOW - 9 * DAY, next_update=NOW - DAY)), ACTOR)
    dashboard = admin_client.get("/").content.decode()
    assert "/trust/revocation/#crl-" in dashboard


def test_the_actions_take_post_only(admin_client, pki):
    for name in ("certs:revocation-default", "certs:revocation-ca", "certs:crls-add", "certs:crls-fetch"):
        assert admin_client.get(reverse(name)).status_code == 405, name


# --- the org default policy ------------------------------------------------------------------


def test_an_empty_store_shows_the_default_policy_in_words(admin_client):
    body = text(admin_client.get(PAGE))
    assert "Revocation is not checked." in body
    assert "No CRL is stored." in body
    assert "No CA has a policy of its own" in body


def test_setting_the_default_policy_warns_of_cas_without_a_crl(admin_client, pki):
    response = admin_client.post(
        reverse("certs:revocation-default"),
        {"check": "crl", "when_unknown": "refuse", "grace_hours": "6"},
        follow=True,
    )
    body = text(response)
    assert response.redirect_chain[-1][0].startswith(PAGE)
    assert (
        "Revocation policy for the org default: checked by CRL; a certificate whose status is unknown is refused, "
        "6 hours of grace" in body
    )
    assert (
        "No CRL is stored for 'Toot', 'Chug and Ring'" in body or "No CRL is stored for 'Chug and Ring', 'Toot'" in body
    )
    assert crls.default_policy().check == "crl" and crls.default_policy().grace_hours == 6
    assert AuditEvent.objects.filter(action="revocation.set", actor_name="alice").exists()


@pytest.mark.parametrize(
    "data, says",
    [
        ({"check": "sometimes", "when_unknown": "refuse", "grace_hours": "0"}, "Select a valid choice."),
        ({"check": "crl", "when_unknown": "maybe", "grace_hours": "0"}, "Select a valid choice."),
        ({"check": "crl", "when_unknown": "refuse", "grace_hours": "-1"}, "greater than or equal to 0"),
        ({"check": "crl", "when_unknown": "refuse", "grace_hours": "9999999"}, "less than or equal to 8760"),
        ({"check": "crl", "when_unknown": "refuse", "grace_hours": "many"}, "Enter a whole number."),
        ({}, "This field is required."),
    ],
)
def test_a_bad_default_policy_is_refused_in_a_sentence(admin_client, data, says):
    response = admin_client.post(reverse("certs:revocation-default"), data)
    assert response.status_code == 400
    assert says in text(response)
    assert not RevocationPolicy.objects.exists()


# --- the policies of single CAs ----------------------------------------------------------------


def test_a_ca_policy_is_set_listed_and_removed_after_a_confirmation(admin_client, pki):
    chug = sha1_thumbprint(pki.chug.cert)
    body = text(admin_client.get(PAGE))
    assert "Chug and Ring" in body and "in the intermediate CA pool" in body
    response = admin_client.post(
        reverse("certs:revocation-ca"),
        {"ca": chug, "check": "ocsp", "when_unknown": "allow", "grace_hours": "0"},
        follow=True,
    )
    body = text(response)
    assert "Revocation policy for 'Chug and Ring'" in body
    assert (
        "Checked by OCSP (the certificate's own responder); a certificate whose status is unknown is allowed." in body
    )
    remove = reverse("certs:revocation-ca-remove", args=[chug])
    assert f'href="{remove}"' in response.content.decode()

    confirmation = admin_client.get(remove)
    assert confirmation.status_code == 200
    body = text(confirmation)
    assert "Remove the revocation policy of 'Chug and Ring'" in body
    assert "follow the org default: revocation is not checked" in body
    assert RevocationPolicy.objects.filter(ca_sha1=chug).exists()

    body = text(admin_client.post(remove, follow=True))
    assert "Removed the revocation policy for 'Chug and Ring'" in body
    assert not RevocationPolicy.objects.filter(ca_sha1=chug).exists()
    assert AuditEvent.objects.filter(action="revocation.remove").exists()


def test_a_ca_policy_for_an_unknown_ca_is_refused(admin_client, pki):
    stranger = sha1_thumbprint(make_root("Nobody knows me").cert)
    response = admin_client.post(
        reverse("certs:revocation-ca"), {"ca": stranger, "check": "crl", "when_unknown": "refuse", "grace_hours": "0"}
    )
    assert response.status_code == 400
    assert "Select a valid choice." in text(response)
    assert not RevocationPolicy.objects.exists()


@pytest.mark.parametrize("thumbprint", ["0" * 40, "not-a-thumbprint"])
def test_removing_a_policy_that_is_not_there_is_not_found(admin_client, thumbprint):
    assert admin_client.get(reverse("certs:revocation-ca-remove", args=[thumbprint])).status_code == 404
    assert admin_client.post(reverse("certs:revocation-ca-remove", args=[thumbprint])).status_code == 404


# --- the stored CRLs -----------------------------------------------------------------------------


def test_uploading_a_crl_lists_it_with_its_freshness(admin_client, pki, alice):
    response = post_crl(admin_client, "chug.crl", crl_der(make_crl(pki.chug, [(pki.frank.cert, None)], number=7)))
    body = text(response)
    assert "Added the CRL of 'Chug and Ring'" in body and "1 revoked serial," in body
    row = Crl.objects.get()
    assert row.added_by_name == "alice"
    assert f'id="crl-{row.pk}"' in response.content.decode()
    page = admin_client.get(PAGE).content.decode()
    table = text(admin_client.get(PAGE)).split("Stored CRLs")[1]
    assert 'id="stored-crls"' in page
    assert "Chug and Ring full 7" in table
    assert "fresh" in table and "uploaded by alice" in table and "24.0 hours" in table
    assert AuditEvent.objects.filter(action="crl.add", actor_name="alice").exists()


def test_several_crls_in_one_pem_file_are_all_added(admin_client, pki):
    data = crl_pem(make_crl(pki.toot)) + crl_pem(make_crl(pki.chug, [(pki.frank.cert, None)]))
    body = text(post_crl(admin_client, "both.pem", data))
    assert "Added the CRL of 'Toot'" in body and "Added the CRL of 'Chug and Ring'" in body
    assert Crl.objects.count() == 2


def test_a_stale_crl_and_a_soon_stale_one_say_so(admin_client, pki):
    crls.add_crl_file(crl_der(make_crl(pki.chug, this_update=NOW - 9 * DAY, next_update=NOW - DAY)), ACTOR)
    crls.add_crl_file(crl_der(make_crl(pki.toot, this_update=NOW - 6 * DAY, next_update=NOW + DAY / 2)), ACTOR)
    content = admin_client.get(PAGE).content.decode()
    assert "crl-stale" in content and "crl-soon-stale" in content


def test_one_refused_crl_does_not_stop_the_others(admin_client, pki):
    forged = make_crl(pki.chug, key=make_root("Forger").key)
    body = text(post_crl(admin_client, "mixed.pem", crl_pem(make_crl(pki.toot)) + crl_pem(forged)))
    assert "Added the CRL of 'Toot'" in body
    assert "The CRL of 'Chug and Ring' was refused" in body
    assert Crl.objects.count() == 1


def huge() -> bytes:
    return b"0" * (MAX_FILE_BYTES + 1)


@pytest.mark.parametrize(
    "name, data, says",
    [
        ("empty.crl", b"", "The file is empty."),
        ("garbage.crl", b"\x00\x01garbage bytes \xff" * 20, "garbage.crl: "),
        ("frank.pem", None, "No CRL was given: the files hold certificates only."),
        ("forged.crl", "forged", "The CRL of 'Chug and Ring' was refused"),
        ("stranger.crl", "stranger", "The CRL of 'Nobody' was refused"),
        ("huge.crl", "huge", f"CRL files larger than {MAX_FILE_BYTES:,} bytes are not accepted here: add it with"),
        ("damaged.pem", b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n", "damaged and cannot be read"),
    ],
)
def test_bad_crl_files_are_refused_in_a_sentence(admin_client, pki, name, data, says):
    if data is None:
        data = pki.frank.pem
    elif data == "forged":
        data = crl_der(make_crl(pki.chug, key=make_root("Forger").key))
    elif data == "stranger":
        data = crl_der(make_crl(make_root("Nobody")))
    elif data == "huge":
        data = huge()
    response = admin_client.post(reverse("certs:crls-add"), {"file": upload(name, data)})
    assert response.status_code == 400
    body = text(response)
    assert says in body
    assert "Traceback" not in body and "Exception" not in body
    assert not Crl.objects.exists()


def test_no_file_at_all_asks_for_one(admin_client):
    response = admin_client.post(reverse("certs:crls-add"), {})
    assert response.status_code == 400 and "Choose a CRL file." in text(response)


def test_an_older_crl_than_the_stored_one_is_refused(admin_client, pki):
    crls.add_crl_file(crl_der(make_crl(pki.chug, number=5)), ACTOR)
    response = admin_client.post(
        reverse("certs:crls-add"),
        {"file": upload("old.crl", crl_der(make_crl(pki.chug, number=4, this_update=NOW - 2 * DAY)))},
    )
    assert response.status_code == 400
    assert "a newer one is stored already" in text(response)


def test_removing_a_crl_asks_first_and_says_what_stops_being_checked(admin_client, pki):
    crls.add_crl_file(crl_der(make_crl(pki.chug, [(pki.frank.cert, None)], number=3)), ACTOR)
    row = Crl.objects.get()
    remove = reverse("certs:crls-remove", args=[row.pk])
    assert f'href="{remove}"' in admin_client.get(PAGE).content.decode()
    confirmation = admin_client.get(remove)
    body = text(confirmation)
    assert "Remove the CRL number 3 of 'Chug and Ring'" in body
    assert "The 1 serial number it lists stop being checked" in body
    assert "when unknown" in body
    assert Crl.objects.exists()
    body = text(admin_client.post(remove, follow=True))
    assert "Removed the CRL of 'Chug and Ring'" in body
    assert not Crl.objects.exists()
    assert AuditEvent.objects.filter(action="crl.remove", actor_name="alice").exists()


def test_removing_a_crl_that_is_not_there_is_not_found(admin_client):
    assert admin_client.get(reverse("certs:crls-remove", args=[999])).status_code == 404
    assert admin_client.post(reverse("certs:crls-remove", args=[999])).status_code == 404


def test_the_org_cas_crl_says_where_it_came_from(admin_client, db):
    from certs import org_ca

    org_ca.create("Org CA for the page", ACTOR)
    org_ca.current_crl()
    assert "the org CA's own" in text(admin_client.get(PAGE))


# --- fetching --------------------------------------------------------------------------------


def test_fetch_now_with_nothing_to_fetch_says_so(admin_client, pki):
    body = text(admin_client.post(reverse("certs:crls-fetch"), follow=True))
    assert "No certificate in the stores or on a profile names an http or https CRL distribution point." in body


def test_fetch_now_runs_the_fetch_and_reports_each_address_in_words(admin_client, pki, monkeypatch):
    results = [
        crls.Fetched("http://crl.example.com/chug.crl", "added", "Added the CRL of 'Chug and Ring' (id 1)."),
        crls.Fetched("http://crl.example.com/toot.crl", "failed", "The server answered HTTP 404 (Not Found)."),
    ]
    called = []
    monkeypatch.setattr(crls, "fetch_crls", lambda actor: called.append(actor) or results)
    body = text(admin_client.post(reverse("certs:crls-fetch"), follow=True))
    assert called and called[0].username == "alice"
    assert "Added: http://crl.example.com/chug.crl: Added the CRL of 'Chug and Ring' (id 1)." in body
    assert "Failed: http://crl.example.com/toot.crl: The server answered HTTP 404 (Not Found)." in body


def test_fetch_now_reaches_a_distribution_point_that_does_not_answer(admin_client, db):
    from tests.pki import make_cert

    root = make_root("Fetching Root")
    flows.add_to_store(Store.ROOT, [root.cert], ACTOR)
    ca = make_cert(
        "Fetching CA",
        root,
        ca=True,
        extensions=[
            (
                x509.CRLDistributionPoints(
                    [
                        x509.DistributionPoint(
                            [x509.UniformResourceIdentifier("http://127.0.0.1:9/none.crl")], None, None, None
                        )
                    ]
                ),
                False,
            )
        ],
    )
    flows.add_to_store(Store.INTERMEDIATE, [ca.cert], ACTOR)
    body = text(admin_client.post(reverse("certs:crls-fetch"), follow=True))
    assert "Failed: http://127.0.0.1:9/none.crl: It cannot be fetched" in body
