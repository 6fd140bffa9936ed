"""The certificate doctor: the chain picture, the verdict and the rules, and what a change would break."""

import html
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from audit.models import AuditEvent
from certs import chain as chain_picture
from certs import flows, reports, tank, trust, verdicts
from certs.models import Certificate, Store
from certs.x509 import sha1_thumbprint, sha256_fingerprint
from signon import flows as signon_flows
from signon.proxy import Presented
from tests.conftest import ACTOR, install
from tests.pki import DAY, NOW, make_cert, make_client, make_impostor, make_intermediate, make_root
from users.models import User

pytestmark = pytest.mark.django_db


def text(response) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode())))


def picture(cert, chain=(), **config):
    config = trust.TrustConfig(**config)
    connection = trust.connect(cert, list(chain), config, NOW)
    return chain_picture.picture(cert, chain, config, connection, NOW)


def summary(pic):
    return [(b.subject, b.marks, b.link_up, b.anchor, b.stops_here) for b in pic.boxes]


# --- the picture, for the specification's Frank and each place a chain can break -------------


def test_frank_through_chug_and_ring_up_to_toot(spec):
    pic = picture(spec.frank.cert, roots=(spec.toot.cert,), intermediates=(spec.chug.cert,))
    assert pic.connected
    assert summary(pic) == [
        ("Frank", ("presented",), "verified", False, False),
        ("Chug and Ring", ("intermediate",), "verified", False, False),
        ("Toot", ("root",), None, True, False),
    ]


def test_frank_with_chug_and_ring_installed_is_a_two_box_path(spec):
    pic = picture(spec.frank.cert, roots=(spec.chug.cert,))
    assert [b.subject for b in pic.boxes] == ["Frank", "Chug and Ring"]
    assert pic.boxes[-1].anchor


def test_a_chain_stops_at_an_unknown_issuer(spec):
    pic = picture(spec.frank.cert, roots=(spec.toot.cert,))
    assert summary(pic) == [
        ("Frank", ("presented",), "missing", False, True),
        ("Chug and Ring", ("unknown",), None, False, False),
    ]
    assert pic.boxes[0].link_note == "The app knows no certificate named 'Chug and Ring'."


def test_a_chain_breaks_at_a_bad_signature(spec):
    forged = make_cert("Frank", make_root("Forger"), issuer_name=spec.chug.cert.subject)
    pic = picture(forged.cert, roots=(spec.toot.cert,), intermediates=(spec.chug.cert,))
    assert summary(pic)[0][2] == "broken"
    assert pic.boxes[0].link_note == "A certificate named 'Chug and Ring' is known, but its key did not sign 'Frank'."
    assert pic.boxes[1].subject == "Chug and Ring" and pic.boxes[1].marks == ("intermediate",)


def test_a_chain_stops_at_an_expired_intermediate(spec):
    old_ca = make_intermediate("Old CA", spec.toot, not_before=NOW - 10 * DAY, not_after=NOW - DAY)
    leaf = make_client("Frank", old_ca, not_before=NOW - 9 * DAY)
    pic = picture(leaf.cert, [old_ca.cert], roots=(spec.toot.cert,))
    assert [(b.subject, b.validity, b.stops_here) for b in pic.boxes] == [
        ("Frank", "valid", False),
        ("Old CA", "expired", True),
        ("Toot", "valid", False),
    ]
    assert pic.stop.startswith("CA 'Old CA' expired on")


def test_a_name_only_impostor_ca_connects_but_does_not_approve(spec, rich, toot_installed):
    impostor = make_impostor(spec.chug)
    install(Store.ROOT, impostor)
    install(Store.APPROVED, spec.chug)
    flows.add_cn(rich, "Frank", ACTOR)
    leaf = make_client("Frank", impostor)
    diagnosis = reports.diagnose(leaf.cert)
    assert diagnosis.verdict.category == trust.CONNECTS_ONLY
    assert [b.marks for b in diagnosis.picture.boxes] == [("presented",), ("root",)]
    (decision,) = diagnosis.decisions
    checks = dict(decision.checks)
    assert not checks["cn"].held
    assert "an approved CA has that name, but its key did not sign this certificate" in checks["cn"].reason
    assert diagnosis.would_sign_on == []


# --- the verdict and rules for the specification's examples ----------------------------------------


def test_the_specifications_categories_and_rules(spec, rich, toot_installed):
    diagnosis = reports.diagnose(spec.frank.cert, username="rich")
    assert diagnosis.verdict.category_text == "Can connect but not authenticate"
    flows.add_cn(rich, "Frank", ACTOR)
    rule_lines = {rule: check for rule, check in reports.diagnose(spec.frank.cert, username="rich").decisions[0].checks}
    assert (
        rule_lines["cn"].reason
        == "CN 'Frank' is on rich's profile, but issuer 'Chug and Ring' is not on the approved CA list"
    )
    install(Store.APPROVED, spec.chug)
    diagnosis = reports.diagnose(spec.frank.cert)
    assert diagnosis.verdict.category_text == "Can connect and authenticate"
    assert diagnosis.would_sign_on == ["rich"]


def test_verisign_approved_but_not_installed_cannot_connect(spec, rich, toot_installed):
    install(Store.APPROVED, spec.verisign)
    flows.add_cn(rich, "Dick", ACTOR)
    diagnosis = reports.diagnose(spec.dick_by_verisign.cert)
    assert diagnosis.verdict.category == trust.CANNOT_CONNECT
    assert [(b.subject, b.marks, b.stops_here) for b in diagnosis.picture.boxes] == [
        ("Dick", ("presented",), False),
        ("Verisign", ("approved",), True),
    ]


# --- the page ------------------------------------------------------------------------------------


@pytest.fixture
def admin(client, alice):
    client.force_login(alice)
    return client


def test_the_page_examines_an_upload_with_its_chain_for_a_user(admin, spec, rich):
    install(Store.ROOT, spec.toot)
    response = admin.post(
        reverse("certs:doctor"),
        {
            "file": SimpleUploadedFile("frank.pem", spec.frank.pem),
            "chain_file": SimpleUploadedFile("c.pem", spec.chug.pem),
            "username": "rich",
        },
    )
    assert response.status_code == 200
    body = text(response)
    assert "Verdict: Can connect but not authenticate" in body
    assert response.content.decode().count('class="chain-box') == 3
    assert "sent by the client" in body and "in the trusted root store" in body and "trust anchor" in body
    assert "Judged for user rich" in body
    # Each of the three rules is a line, none held, each with its reason.
    assert body.count("not held") == 3
    assert "Thumbprint assigned to the user's profile : thumbprint" in body
    assert "CN 'Frank' is not on rich's profile" in body


def test_the_page_takes_a_pasted_certificate_and_says_whom_it_signs_on(admin, spec, rich, toot_installed):
    flows.add_thumbprint(rich, sha1_thumbprint(spec.frank.cert), ACTOR)
    response = admin.post(reverse("certs:doctor"), {"pasted": spec.frank.pem.decode()})
    assert "Without a username, this certificate signs on rich (by thumbprint)." in text(response)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "Choose a certificate file or paste a certificate."),
        ({"pasted": "not a certificate"}, "not valid base64"),
        ({"pasted": "-----BEGIN CERTIFICATE-----\nMII"}, "truncated"),
    ],
)
def test_the_page_explains_bad_input(admin, data, message):
    response = admin.post(reverse("certs:doctor"), data)
    assert response.status_code == 400
    assert message in text(response)


def test_an_unknown_user_is_explained(admin, spec):
    response = admin.post(reverse("certs:doctor"), {"pasted": spec.frank.pem.decode(), "username": "ghost"})
    assert "There is no user 'ghost'." in text(response)


def test_holding_tank_entries_link_to_the_doctor(admin, spec, rich, toot_installed):
    verdict = verdicts.judge(spec.frank.cert, username="rich")
    tank.record_presentation(verdict, spec.frank.cert, "rich", "https", None)
    page = admin.get(reverse("certs:edit-client-certs", args=["rich"])).content.decode()
    link = f"/doctor/?certificate={sha256_fingerprint(spec.frank.cert)}&amp;user=rich"
    assert link in page
    response = admin.get(html.unescape(link))
    assert "Can connect but not authenticate" in text(response)
    assert "Judged for user rich" in text(response)


def test_sign_on_entries_in_the_audit_log_link_to_the_doctor_with_the_chain(admin, spec, rich):
    install(Store.ROOT, spec.toot)
    signon_flows.sign_on(Presented(spec.frank.cert, (spec.chug.cert,)), username="rich")
    page = admin.get(reverse("users:audit")).content.decode()
    match = re.search(r'href="(/doctor/\?certificate=[^"]+)"', page)
    assert match, "the sign-on entry links to the doctor"
    link = html.unescape(match.group(1))
    assert f"chain={sha256_fingerprint(spec.chug.cert)}" in link and "user=rich" in link
    assert "Can connect but not authenticate" in text(admin.get(link))


def test_an_unknown_fingerprint_is_404(admin):
    assert admin.get(reverse("certs:doctor"), {"certificate": "AB" * 32}).status_code == 404


# --- what a change would break ---------------------------------------------------------------------


@pytest.fixture
def estate(spec, rich, charlie):
    """Several users, roots and approved CAs.

    Toot and Elsewhere Root are installed; Chug and Ring (under Toot) is an intermediate and
    approved; a second CA, Partner CA, is installed and approved. rich: thumbprint of Frank
    (via Chug and Ring). charlie: CN 'Charlie' (any approved CA); his certificate comes from
    Partner CA. dana: username match (match CN on), her certificate from Chug and Ring. erin:
    thumbprint of a certificate from Elsewhere Root.
    """
    partner = make_root("Partner CA")
    install(Store.ROOT, spec.toot, spec.other_root, partner)
    install(Store.INTERMEDIATE, spec.chug)
    install(Store.APPROVED, spec.chug, partner)
    flows.set_match_cn(True, ACTOR)
    User.objects.create_user("dana")
    erin = User.objects.create_user("erin")
    charlie_cert = make_client("Charlie", partner)
    dana_cert = make_client("Dana", spec.chug)
    flows.import_to_profile(rich, [spec.frank.cert], ACTOR)
    flows.add_cn(charlie, "Charlie", ACTOR)
    flows.import_to_profile(erin, [spec.stranger.cert], ACTOR)
    # dana's and charlie's certificates are known from sign-on only.
    for cert in (dana_cert, charlie_cert):
        signon_flows.sign_on(Presented(cert.cert))
    return {"partner": partner}


def lost(consequences):
    return sorted(user for c in consequences for user in c.lost_users)


def test_removing_toot_breaks_exactly_the_users_under_it(spec, estate):
    consequences = reports.impact_of_store_removal(
        Store.ROOT, Certificate.objects.get(sha1=sha1_thumbprint(spec.toot.cert))
    )
    assert lost(consequences) == ["dana", "rich"]
    assert all(c.after == trust.CANNOT_CONNECT for c in consequences)


def test_removing_an_approved_ca_breaks_only_cn_sign_ons(spec, estate):
    chug = Certificate.objects.get(sha1=sha1_thumbprint(spec.chug.cert))
    assert lost(reports.impact_of_store_removal(Store.APPROVED, chug)) == ["dana"]  # rich signs on by thumbprint
    partner = Certificate.objects.get(sha1=sha1_thumbprint(estate["partner"].cert))
    assert lost(reports.impact_of_store_removal(Store.APPROVED, partner)) == ["charlie"]


def test_removing_an_unrelated_root_breaks_nobody_but_its_own(spec, estate):
    elsewhere = Certificate.objects.get(sha1=sha1_thumbprint(spec.other_root.cert))
    assert lost(reports.impact_of_store_removal(Store.ROOT, elsewhere)) == ["erin"]
    # Chug and Ring is approved as well, and approved CAs build paths too: leaving the pool breaks nothing.
    intermediate = Certificate.objects.get(sha1=sha1_thumbprint(spec.chug.cert))
    assert lost(reports.impact_of_store_removal(Store.INTERMEDIATE, intermediate)) == []


def test_turning_match_cn_off_breaks_username_matches(estate):
    assert lost(reports.impact_of_match_cn(False)) == ["dana"]


def test_the_confirmation_pages_list_the_consequences(admin, spec, estate):
    page = text(admin.get(reverse("certs:roots-remove", args=[sha256_fingerprint(spec.toot.cert)])))
    assert "What this change would break" in page
    assert "rich" in page and "dana" in page and "can no longer connect" in page
    page = text(admin.post(reverse("certs:match-cn"), {}))
    assert "dana" in page and "no longer authenticates" in page


def test_a_mode_change_lists_the_certificates_that_stop_signing_on(admin, spec, rich, estate):
    rich.https_mode = "cert"
    rich.save()
    impact = reports.impact_of_mode_change(rich, "https", "password")
    assert impact.stops == [
        "rich's certificates no longer sign on alone.",
        "Certificates play no part for rich any more.",
    ]
    assert [c.subject for c in impact.certificates] == ["Frank"]
    page = text(admin.post(reverse("users:policy", args=["rich", "https"]), {"mode": "password"}))
    assert "Certificates play no part for rich any more." in page and "Frank" in page


# --- the overview ---------------------------------------------------------------------


def test_the_overview_groups_certificates_seen_at_sign_on(admin, spec, rich, toot_installed):
    rich.https_mode = "cert"
    rich.save()
    flows.add_thumbprint(rich, sha1_thumbprint(spec.frank.cert), ACTOR)
    for cert in (spec.frank, spec.frank, spec.dick, spec.stranger):
        signon_flows.sign_on(Presented(cert.cert))
    AuditEvent.objects.flush_repeats()
    data = reports.overview(7)
    assert [data.count(c) for c in trust.CATEGORY_TEXT] == [1, 1, 1]
    (frank_row,) = data.rows[trust.AUTHENTICATES]
    assert frank_row.attempts == 2 and frank_row.users == {"rich"}
    page = admin.get(reverse("certs:overview"), {"days": 30})
    assert f"/doctor/?certificate={sha256_fingerprint(spec.dick.cert)}" in page.content.decode()
    assert "Cannot connect" in text(page)


def test_the_doctor_agrees_with_sign_on(spec, rich, charlie, toot_installed):
    install(Store.APPROVED, spec.chug, spec.verisign)
    flows.set_match_cn(True, ACTOR)
    flows.add_cn(rich, "Dick", ACTOR)
    flows.add_thumbprint(charlie, sha1_thumbprint(spec.frank.cert), ACTOR)
    forged = make_cert("Frank", make_root("Forger"), issuer_name=spec.chug.cert.subject)
    for issued in (spec.frank, spec.dick, spec.rich, spec.dick_by_verisign, spec.stranger, forged):
        doctor_says = reports.diagnose(issued.cert)
        sign_on_says = signon_flows.sign_on(Presented(issued.cert))
        assert doctor_says.verdict.category == sign_on_says.verdict.category, issued.cert.subject
        assert doctor_says.would_sign_on == (
            [sign_on_says.verdict.authentication.user] if sign_on_says.verdict.authentication.ok else []
        )


def test_the_authenticated_badge_agrees_with_the_verdict(admin, spec, rich):
    """A thumbprint on rich's profile, but nothing installed: the certificate cannot connect,
    so no badge may say "authenticated"."""
    flows.add_thumbprint(rich, sha1_thumbprint(spec.frank.cert), ACTOR)
    response = admin.post(
        reverse("certs:doctor"), {"file": SimpleUploadedFile("frank.pem", spec.frank.pem), "username": "rich"}
    )
    body = response.content.decode()
    assert "Cannot connect" in body
    assert ">authenticated<" not in body
    assert "a credential rule holds, but the certificate does not sign this user on" in body
