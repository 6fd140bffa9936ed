"""Per-record rules: uniqueness, normalisation, what is stored once, and what is audited."""

import pytest
from django.db import IntegrityError, transaction

from audit.models import AuditEvent
from certs import flows
from certs.models import Certificate, Credential
from certs.x509 import sha1_thumbprint
from tests.conftest import ACTOR
from users.models import User

pytestmark = pytest.mark.django_db


def test_usernames_are_unique_without_regard_to_case_even_below_the_form(rich):
    with pytest.raises(IntegrityError), transaction.atomic():
        User(username="RICH").save()
    assert User.objects.find(" Rich ") == rich
    assert User.objects.get_by_natural_key("RICH") == rich


def test_the_admin_flag_is_what_django_asks_about(alice, rich):
    assert alice.is_staff and alice.has_perm("anything")
    assert not rich.is_staff and not rich.has_perm("anything")


def test_a_cn_on_a_profile_is_stored_once_however_it_is_written(rich):
    first, added = flows.add_cn(rich, "Dick", ACTOR)
    again, added_again = flows.add_cn(rich, "  DICK ", ACTOR)
    assert added and not added_again
    assert first == again
    assert Credential.objects.get().key == "dick"


def test_the_same_thumbprint_may_be_on_two_profiles_when_sharing_is_allowed(rich, charlie, spec):
    thumbprint = sha1_thumbprint(spec.frank.cert)
    flows.add_thumbprint(rich, thumbprint, ACTOR)
    with pytest.raises(flows.SharedEntry, match="concerns rich too"):
        flows.add_thumbprint(charlie, thumbprint, ACTOR)
    flows.add_thumbprint(charlie, thumbprint, ACTOR, allow_shared=True)
    assert Credential.objects.filter(key=thumbprint).count() == 2


def test_a_certificate_is_stored_once(spec):
    first = Certificate.objects.store(spec.frank.cert)
    assert Certificate.objects.store(spec.frank.cert) == first
    assert first.to_x509() == spec.frank.cert
    assert first.common_name == "Frank" and first.issuer_display == "Chug and Ring"


def test_a_certificate_on_a_profile_links_to_what_is_known_of_it(rich, spec):
    Certificate.objects.store(spec.frank.cert)
    credential, _ = flows.add_thumbprint(rich, sha1_thumbprint(spec.frank.cert), ACTOR)
    assert credential.certificate.subject == "CN=Frank"


def test_changes_are_audited_with_who_and_what(rich, alice, spec):
    flows.add_cn(rich, "Dick", alice, source_address="192.0.2.5")
    event = AuditEvent.objects.get(action="credential.add")
    assert (event.actor, event.actor_name, event.target_user, event.source_address) == (
        alice,
        "alice",
        rich,
        "192.0.2.5",
    )
    assert event.summary == "Added CN Dick to rich's profile."
