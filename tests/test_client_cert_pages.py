"""The Edit SSL Client Certificates page and the org holding tank, through the test client."""

import html
import re

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from audit.models import AuditEvent
from certs import flows, verdicts
from certs.loading import MAX_FILE_BYTES
from certs.models import Credential, Store, StoreEntry, TankEntry
from certs.org_ca import create as create_org_ca
from certs.tank import record_presentation
from certs.x509 import format_thumbprint, sha1_thumbprint
from tests.conftest import ACTOR, install
from tests.pki import make_client

pytestmark = pytest.mark.django_db

SPEC_THUMBPRINT = "3D17 CFF3 E27B 127D 2753 A7F1 873E 2743 783B FBD2"


@pytest.fixture
def admin_client(client, alice):
    client.force_login(alice)
    return client


def page(username="rich"):
    return reverse("certs:edit-client-certs", args=[username])


def url(name, *args):
    return reverse(f"certs:{name}", args=args)


def upload(name, data):
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def text(response) -> str:
    """The page as a person reads it: entities decoded, white space collapsed."""
    return re.sub(r"\s+", " ", html.unescape(response.content.decode()))


# --- the page ------------------------------------------------------------------------------


def test_the_page_shows_each_section(admin_client, rich):
    response = admin_client.get(page())
    assert response.status_code == 200
    body = text(response)
    for heading in [
        "Current SSL Client Certificates",
        "Add (manually)",
        "Import from a file",
        "Create New",
        "Trusted CAs",
        "Holding Tank",
    ]:
        assert heading in body
    assert "There is no org CA yet" in body
    assert 'href="/trust/cas/#org-ca"' in body


def test_an_unknown_user_is_404(admin_client):
    assert admin_client.get(page("ghost")).status_code == 404


def test_a_certificate_on_the_profile_shows_its_details(admin_client, rich, spec):
    old = make_client("Old laptop", spec.chug, not_after=spec.frank.cert.not_valid_before_utc)
    flows.import_to_profile(rich, [spec.frank.cert, old.cert], ACTOR)
    body = text(admin_client.get(page()))
    assert format_thumbprint(sha1_thumbprint(spec.frank.cert)) in body
    assert "SHA-256 " in body
    assert "Chug and Ring" in body  # the issuer
    assert "expired" in body
    assert ACTOR in body


# --- Add (manually) --------------------------------------------------------------------------


def test_a_thumbprint_in_any_notation_is_added_in_the_specifications_form(admin_client, rich):
    response = admin_client.post(
        url("add-credential", "rich"),
        {"kind": "thumbprint", "value": "3d:17:cf:f3:e2:7b:12:7d:27:53:a7:f1:87:3e:27:43:78:3b:fb:d2"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == page()
    assert f"Added thumbprint {SPEC_THUMBPRINT} to rich's profile." in text(response)
    assert Credential.objects.get(user=rich).value == SPEC_THUMBPRINT.replace(" ", "")
    assert AuditEvent.objects.filter(action="credential.add", actor__username="alice").exists()


def test_a_cn_is_added_and_a_missing_approved_ca_is_pointed_out(admin_client, rich):
    response = admin_client.post(url("add-credential", "rich"), {"kind": "cn", "value": " Dick "}, follow=True)
    body = text(response)
    assert "Added CN Dick to rich's profile." in body
    assert "The approved CA list is empty" in body


def test_adding_twice_says_it_is_already_there(admin_client, rich):
    admin_client.post(url("add-credential", "rich"), {"kind": "cn", "value": "Dick"})
    response = admin_client.post(url("add-credential", "rich"), {"kind": "cn", "value": "dick"}, follow=True)
    assert "is already on rich's profile" in text(response)
    assert Credential.objects.count() == 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "thumbprint", "value": "3D17 CFF3"}, "A thumbprint has 40 hexadecimal digits; this one has 8."),
        ({"kind": "thumbprint", "value": "z" * 40}, "A thumbprint holds only the hexadecimal digits"),
        ({"kind": "thumbprint", "value": "a" * 64}, "That is a SHA-256 fingerprint"),
        ({"kind": "cn", "value": "   "}, "This field is required."),
        ({"kind": "cn", "value": "bad\x01cn"}, "control characters"),
        # Each of these once passed the form, was refused by the use case and answered 500.
        ({"kind": "cn", "value": "A" * 300}, "A CN has at most 256 characters; this one has 300."),
        ({"kind": "cn", "value": "Rich\x7f"}, "A CN cannot contain control characters or invisible characters"),
        ({"kind": "cn", "value": "Ri\u200bch"}, "A CN cannot contain control characters or invisible characters"),
        ({"kind": "password", "value": "x"}, "Select a valid choice."),
        ({}, "This field is required."),
    ],
)
def test_bad_values_are_explained_on_the_page_and_change_nothing(admin_client, rich, data, message):
    response = admin_client.post(url("add-credential", "rich"), data)
    assert response.status_code == 400
    assert message in text(response)
    assert not Credential.objects.exists()


# --- Import from a file ----------------------------------------------------------------------


def test_import_records_thumbprint_and_cn_when_the_issuer_is_approved(admin_client, rich, spec, toot_installed):
    install(Store.APPROVED, spec.chug)
    response = admin_client.post(
        url("import-certificates", "rich"),
        {"file": upload("frank.pem", spec.frank.pem + spec.chug.pem), "record_as": "both"},
    )
    assert response.status_code == 200
    body = text(response)
    assert "Thumbprint: recorded." in body
    assert "CN 'Frank': recorded; its issuing CA is approved." in body
    assert "Not put on the profile (CA certificates in the file): Chug and Ring." in body
    assert set(Credential.objects.values_list("kind", flat=True)) == {"thumbprint", "cn"}


def test_import_explains_an_unapproved_issuer_and_links_to_approving_it(admin_client, rich, spec, toot_installed):
    response = admin_client.post(
        url("import-certificates", "rich"), {"file": upload("frank.cer", spec.frank.der), "record_as": "both"}
    )
    body = text(response)
    assert "The CN authenticates only once its CA is approved: issuer 'Chug and Ring' is not on the approved" in body
    approve = reverse("certs:cas-approve", args=[StoreEntry.objects.get(store="intermediate").certificate.sha256])
    assert approve in body
    # Following the link asks first, then approves.
    confirm = admin_client.get(approve + "?next=" + page())
    assert "Add 'Chug and Ring'" in text(confirm)
    done = admin_client.post(approve, {"next": page()})
    assert done.url == page()
    assert StoreEntry.objects.filter(store=Store.APPROVED).count() == 1


def test_import_of_an_unknown_issuer_says_where_to_add_it(admin_client, rich, spec):
    response = admin_client.post(url("import-certificates", "rich"), {"file": upload("frank.pem", spec.frank.pem)})
    assert "is not known to the app: add its certificate on the" in text(response)


def test_import_of_a_self_signed_certificate_offers_installing_it(admin_client, rich):
    selfie = make_client("Rich's laptop")
    response = admin_client.post(url("import-certificates", "rich"), {"file": upload("laptop.crt", selfie.der)})
    body = text(response)
    assert "Install it in the trusted root store" in body
    sha256 = Credential.objects.get().certificate.sha256
    install_url = reverse("certs:roots-install", args=[sha256])
    assert install_url in body
    admin_client.post(install_url, {"next": page()})
    assert StoreEntry.objects.filter(store=Store.ROOT, certificate__sha256=sha256).exists()
    assert verdicts.judge(selfie.cert).authentication.user == "rich"


def test_import_of_a_pkcs12_with_its_password(admin_client, rich, spec):
    p12 = pkcs12.serialize_key_and_certificates(
        b"frank", spec.frank.key, spec.frank.cert, [spec.chug.cert], BestAvailableEncryption(b"pw")
    )
    wrong = admin_client.post(
        url("import-certificates", "rich"), {"file": upload("frank.pfx", p12), "password": "nope"}
    )
    assert wrong.status_code == 400
    assert "The password does not open this PKCS#12 file" in text(wrong)
    right = admin_client.post(url("import-certificates", "rich"), {"file": upload("frank.pfx", p12), "password": "pw"})
    assert right.status_code == 200
    assert Credential.objects.filter(kind="thumbprint", key=sha1_thumbprint(spec.frank.cert)).exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty."),
        (b"garbage that is not a certificate", "not a certificate"),
        (b"-----BEGIN CERTIFICATE-----\nMIIB", "truncated"),
        (b"0" * (MAX_FILE_BYTES + 1), "are not accepted"),
    ],
)
def test_a_bad_file_is_an_error_on_the_page_and_changes_nothing(admin_client, rich, data, message):
    response = admin_client.post(url("import-certificates", "rich"), {"file": upload("bad.pem", data)})
    assert response.status_code == 400
    assert message in text(response)
    assert not Credential.objects.exists()


def test_a_private_key_upload_is_refused(admin_client, rich, spec):
    response = admin_client.post(url("import-certificates", "rich"), {"file": upload("key.pem", spec.frank.key_pem)})
    assert response.status_code == 400
    assert "This file holds a private key, not a certificate." in text(response)


def test_no_file_chosen(admin_client, rich):
    response = admin_client.post(url("import-certificates", "rich"), {})
    assert "Choose a certificate file." in text(response)


# --- Create New ------------------------------------------------------------------------------


@pytest.fixture
def org_ca(db):
    return create_org_ca("Example Org CA", ACTOR)[0]


def create_new(client, username, **fields):
    """Create New as a browser does it: the form (with its one-time token) first, then the post."""
    page = client.get(url("edit-client-certs", username)).content.decode()
    once = re.search(r'name="once" value="([^"]+)"', page).group(1)
    return client.post(url("create-certificate", username), {"once": once, **fields}, follow=True)


def test_create_new_shows_the_password_once_and_downloads_once(admin_client, rich, org_ca):
    response = create_new(admin_client, "rich", cn="rich", key_type="ec-p256", days="30")
    assert response.status_code == 200
    assert response.redirect_chain and response["Cache-Control"].startswith("max-age=0")
    body = text(response)
    password = re.search(r'id="p12-password">([^<]+)<', body).group(1).strip()
    download = re.search(r'id="download-p12" href="([^"]+)"', body).group(1)
    assert password not in str(dict(admin_client.session))  # the password is not kept anywhere
    first = admin_client.get(download)
    assert first.status_code == 200
    assert first["Content-Disposition"] == 'attachment; filename="rich.p12"'
    bundle = pkcs12.load_pkcs12(first.content, password.encode())
    assert bundle.cert.certificate.issuer == org_ca.certificate.to_x509().subject
    assert Credential.objects.get(user=rich).key == sha1_thumbprint(bundle.cert.certificate)
    second = admin_client.get(download, follow=True)
    assert "That download is no longer available" in text(second)


def test_create_new_explains_bad_values(admin_client, rich, org_ca):
    response = admin_client.post(url("create-certificate", "rich"), {"cn": "x", "key_type": "dsa", "days": "0"})
    assert response.status_code == 400
    body = text(response)
    assert "Select a valid choice." in body
    assert "Ensure this value is greater than or equal to 1." in body
    assert not Credential.objects.exists()


def test_create_new_refuses_a_certificate_outliving_the_org_ca(admin_client, rich):
    create_org_ca("Short CA", ACTOR, days=10)
    response = create_new(admin_client, "rich", cn="rich", key_type="ec-p256", days="30")
    assert response.status_code == 400
    assert "would outlive it" in text(response)


def test_create_new_without_an_org_ca_says_so(admin_client, rich):
    response = admin_client.post(
        url("create-certificate", "rich"), {"cn": "rich", "key_type": "ec-p256", "days": "30"}, follow=True
    )
    assert "There is no org CA yet" in text(response)


def test_a_download_belongs_to_the_user_it_was_made_for(admin_client, rich, charlie, org_ca):
    body = text(create_new(admin_client, "rich", cn="r", key_type="ec-p256", days="5"))
    download = re.search(r'id="download-p12" href="([^"]+)"', body).group(1)
    other = download.replace("/user/rich/", "/user/charlie/")
    assert admin_client.get(other).status_code == 302
    assert admin_client.get(download).status_code == 302  # a failed attempt used it up: make a new one


# --- Remove ----------------------------------------------------------------------------------


def test_remove_asks_first_then_removes(admin_client, rich):
    credential, _ = flows.add_cn(rich, "Dick", ACTOR)
    remove = url("remove-credential", "rich", credential.pk)
    confirm = admin_client.get(remove)
    assert "Remove CN Dick from rich's profile?" in text(confirm)
    assert Credential.objects.exists()
    done = admin_client.post(remove, follow=True)
    assert "Removed CN Dick from rich's profile." in text(done)
    assert not Credential.objects.exists()
    assert admin_client.post(remove).status_code == 404


def test_a_credential_of_another_user_cannot_be_removed_through_this_page(admin_client, rich, charlie):
    credential, _ = flows.add_cn(charlie, "Charlie", ACTOR)
    assert admin_client.post(url("remove-credential", "rich", credential.pk)).status_code == 404
    assert Credential.objects.exists()


# --- the holding tank ------------------------------------------------------------------------


def tank(spec, cert, username):
    verdict = verdicts.judge(cert.cert, username=username)
    return record_presentation(verdict, cert.cert, username, "https", "203.0.113.9")


def test_the_users_tank_is_shown_and_entries_are_accepted(admin_client, rich, spec, toot_installed):
    entries = {e.kind: e for e in tank(spec, spec.frank, "rich")}
    body = text(admin_client.get(page()))
    assert "203.0.113.9" in body and "HTTPS" in body
    response = admin_client.post(url("accept-tank-entry", "rich", entries["thumbprint"].pk), follow=True)
    assert "Accepted thumbprint" in text(response)
    assert verdicts.judge(spec.frank.cert).authentication.user == "rich"


def test_tank_entries_are_removed_after_confirmation(admin_client, rich, spec, toot_installed):
    entry = tank(spec, spec.frank, "rich")[0]
    remove = url("remove-tank-entry", "rich", entry.pk)
    assert "holding tank?" in text(admin_client.get(remove))
    admin_client.post(remove)
    assert TankEntry.objects.count() == 1


def test_another_users_tank_entry_is_not_reachable(admin_client, rich, charlie, spec, toot_installed):
    entry = tank(spec, spec.frank, "charlie")[0]
    assert admin_client.post(url("accept-tank-entry", "rich", entry.pk)).status_code == 404


def test_org_tank_entries_are_assigned_to_a_user(admin_client, rich, spec, toot_installed):
    (entry,) = tank(spec, spec.frank, None)
    page_body = text(admin_client.get(url("org-tank")))
    assert "Frank" in page_body and "Assign" in page_body
    prefix = f"e{entry.pk}"
    bad = admin_client.post(
        url("assign-tank-entry", entry.pk), {f"{prefix}-username": "ghost", f"{prefix}-as_kind": "cn"}
    )
    assert bad.status_code == 400
    assert "There is no user 'ghost'." in text(bad)
    done = admin_client.post(
        url("assign-tank-entry", entry.pk), {f"{prefix}-username": "RICH", f"{prefix}-as_kind": "cn"}, follow=True
    )
    assert "Accepted CN Frank into rich's profile." in text(done)
    assert not TankEntry.objects.exists()


def test_org_tank_entries_are_removed_after_confirmation(admin_client, spec, toot_installed):
    (entry,) = tank(spec, spec.frank, None)
    remove = url("remove-org-tank-entry", entry.pk)
    assert "the org holding tank?" in text(admin_client.get(remove))
    admin_client.post(remove)
    assert not TankEntry.objects.exists()


def sha256_of(issued):
    return issued.cert.fingerprint(hashes.SHA256()).hex().upper()


def test_a_presented_certificate_is_one_row_with_its_entries(admin_client, rich, spec, toot_installed):
    tank(spec, spec.frank, "rich")
    body = text(admin_client.get(page()))
    assert body.count('class="presented"') == 1
    assert "Accept thumbprint" in body and "Accept CN" in body


def test_accepting_the_thumbprint_keeps_the_cn_entry_waiting(admin_client, rich, spec, toot_installed):
    entries = {e.kind: e for e in tank(spec, spec.frank, "rich")}
    admin_client.post(url("accept-tank-entry", "rich", entries["thumbprint"].pk))
    assert list(TankEntry.objects.values_list("kind", flat=True)) == ["cn"]


def test_a_presented_certificate_is_removed_whole_after_confirmation(admin_client, rich, spec, toot_installed):
    tank(spec, spec.frank, "rich")
    tank(spec, spec.dick, "rich")
    remove = url("remove-presented", "rich", sha256_of(spec.frank))
    assert "Its thumbprint and CN entries both go." in text(admin_client.get(remove))
    assert TankEntry.objects.count() == 4
    done = admin_client.post(remove, follow=True)
    assert "Removed " in text(done)
    assert set(TankEntry.objects.values_list("certificate__sha256", flat=True)) == {sha256_of(spec.dick)}
    event = AuditEvent.objects.get(action="tank.remove")
    assert event.target_user == rich and sorted(event.detail["entries"]) == ["cn", "thumbprint"]
    again = admin_client.post(remove, follow=True)
    assert "not waiting in the holding tank any more" in text(again)


def test_the_pending_page_lists_every_tank(admin_client, rich, charlie, spec, toot_installed):
    tank(spec, spec.frank, "rich")
    tank(spec, spec.dick, "charlie")
    tank(spec, spec.rich, None)
    body = text(admin_client.get(url("pending")))
    assert body.count('class="presented"') == 3
    assert url("edit-client-certs", "rich") + "#holding-tank" in body
    assert url("edit-client-certs", "charlie") + "#holding-tank" in body
    assert url("org-tank") in body


def test_the_pending_page_says_when_nothing_waits(admin_client):
    assert "Nothing is waiting in any holding tank." in text(admin_client.get(url("pending")))


def test_get_requests_never_change_anything(admin_client, rich, spec, toot_installed, org_ca):
    credential, _ = flows.add_cn(rich, "Dick", ACTOR)
    entry = tank(spec, spec.frank, "rich")[0]
    before = (Credential.objects.count(), TankEntry.objects.count(), AuditEvent.objects.count())
    for address in [
        url("add-credential", "rich"),
        url("import-certificates", "rich"),
        url("create-certificate", "rich"),
        url("remove-credential", "rich", credential.pk),
        url("accept-tank-entry", "rich", entry.pk),
        url("remove-tank-entry", "rich", entry.pk),
    ]:
        assert admin_client.get(address).status_code in (200, 405)
    assert (Credential.objects.count(), TankEntry.objects.count(), AuditEvent.objects.count()) == before


def test_the_download_name_is_plain_ascii_whatever_the_cn(admin_client, rich, org_ca):
    cn = 'Rich "q" \u2603 \u65e5\u672c'
    body = text(create_new(admin_client, "rich", cn=cn, key_type="ec-p256", days="5"))
    download = re.search(r'id="download-p12" href="([^"]+)"', body).group(1)
    assert admin_client.get(download)["Content-Disposition"] == 'attachment; filename="Rich__q.p12"'


def test_reloading_the_result_or_resubmitting_the_form_issues_nothing_more(admin_client, rich, org_ca):
    """F5 on the result once posted the form again: a second certificate and password appeared."""
    page = admin_client.get(url("edit-client-certs", "rich")).content.decode()
    once = re.search(r'name="once" value="([^"]+)"', page).group(1)
    form = {"once": once, "cn": "rich", "key_type": "ec-p256", "days": "30"}
    first = admin_client.post(url("create-certificate", "rich"), form)
    assert first.status_code == 302
    shown = text(admin_client.get(first["Location"]))
    assert 'id="p12-password"' in shown
    again = text(admin_client.get(first["Location"], follow=True))
    assert "was shown once and is not kept" in again and 'id="p12-password"' not in again
    resubmitted = text(admin_client.post(url("create-certificate", "rich"), form, follow=True))
    assert "That form was submitted already: nothing more was issued." in resubmitted
    assert Credential.objects.filter(user=rich).count() == 1


def test_import_records_the_thumbprint_alone_unless_told_otherwise(admin_client, rich, spec, toot_installed):
    """Recording the CN as well once happened by itself whenever the CA was approved, so any
    certificate with that CN from that CA could then sign the user on."""
    install(Store.APPROVED, spec.chug)
    page = text(admin_client.get(page_url := url("edit-client-certs", "rich")))
    assert "Record each certificate by" in page and "any certificate with this CN from an approved CA" in page
    admin_client.post(url("import-certificates", "rich"), {"file": upload("frank.pem", spec.frank.pem)})
    assert list(Credential.objects.values_list("kind", flat=True)) == ["thumbprint"]
    assert page_url
    admin_client.post(
        url("import-certificates", "rich"), {"file": upload("dick.pem", spec.dick.pem), "record_as": "cn"}
    )
    assert Credential.objects.filter(kind="cn", value="Dick").exists()
    assert not Credential.objects.filter(key=sha1_thumbprint(spec.dick.cert)).exists()
