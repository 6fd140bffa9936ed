"""Every example of the specification, with its stated outcome, through the stored configuration.

"Client Certificate Connect/Authenticate Example - Fixed Cert, Flexible Criteria" (Frank,
Chug and Ring, Toot), and "Flexible Cert, Fixed Criteria" (user Rich with the alternate CN
Dick, Verisign approved but not installed).
"""

import pytest

from certs import flows, trust, verdicts
from certs.models import Store
from certs.trust import AUTHENTICATES, CANNOT_CONNECT, CONNECTS_ONLY
from certs.x509 import sha1_thumbprint
from tests.conftest import ACTOR, install
from tests.pki import make_client, make_intermediate
from users.models import User


def judge(issued, chain=(), username=None):
    return verdicts.judge(issued.cert, [c.cert for c in chain], username=username)


# --- Fixed cert, flexible criteria: the CA conditions ---------------------------------------


@pytest.mark.django_db
class TestFrankConnects:
    """One of the CA conditions must be true for an SSL connection to occur."""

    def test_nothing_installed_means_frank_cannot_connect(self, spec):
        install(Store.ROOT, spec.other_root)
        verdict = judge(spec.frank, [spec.chug, spec.toot])
        assert verdict.category == CANNOT_CONNECT

    def test_the_frank_cert_installed_in_the_trusted_root_store(self, spec):
        install(Store.ROOT, spec.frank)
        verdict = judge(spec.frank)
        assert verdict.connection.ok
        assert verdict.connection.anchor == spec.frank.cert

    def test_the_chug_and_ring_ca_cert_installed_in_the_trusted_root_store(self, spec):
        install(Store.ROOT, spec.chug)
        verdict = judge(spec.frank)
        assert verdict.connection.ok
        assert verdict.connection.anchor == spec.chug.cert

    def test_the_toot_ca_cert_installed_in_the_trusted_root_store(self, spec):
        install(Store.ROOT, spec.toot)
        verdict = judge(spec.frank, [spec.chug])  # the client sends its chain
        assert verdict.connection.ok
        assert verdict.connection.anchor == spec.toot.cert
        assert verdict.connection.path == (spec.frank.cert, spec.chug.cert, spec.toot.cert)


# --- Fixed cert, flexible criteria: the credential conditions -------------------------------


@pytest.mark.django_db
class TestFrankAuthenticates:
    """One of the credential conditions must be true for Frank to serve as a credential."""

    @pytest.fixture(autouse=True)
    def _connects(self, toot_installed):
        pass

    def test_without_any_credential_frank_connects_but_does_not_authenticate(self, spec, rich):
        assert judge(spec.frank, username="rich").category == CONNECTS_ONLY

    def test_the_thumbprint_assigned_to_the_users_profile(self, spec, rich):
        flows.add_thumbprint(rich, sha1_thumbprint(spec.frank.cert), ACTOR)
        verdict = judge(spec.frank)
        assert verdict.category == AUTHENTICATES
        assert (verdict.authentication.user, verdict.authentication.rule) == ("rich", "thumbprint")

    def test_the_cn_assigned_and_chug_and_ring_approved(self, spec, rich):
        flows.add_cn(rich, "Frank", ACTOR)
        assert judge(spec.frank).category == CONNECTS_ONLY
        install(Store.APPROVED, spec.chug)
        verdict = judge(spec.frank)
        assert verdict.category == AUTHENTICATES
        assert (verdict.authentication.user, verdict.authentication.rule) == ("rich", "cn")

    def test_approving_chug_and_ring_alone_is_not_a_credential(self, spec, rich):
        install(Store.APPROVED, spec.chug)
        assert judge(spec.frank, username="rich").category == CONNECTS_ONLY

    @pytest.mark.parametrize(("username", "full_name"), [("frank", ""), ("fjones", "Frank")])
    def test_username_or_full_name_frank_with_match_cn_on_and_chug_and_ring_approved(self, spec, username, full_name):
        User.objects.create_user(username, full_name=full_name)
        install(Store.APPROVED, spec.chug)
        assert judge(spec.frank).category == CONNECTS_ONLY  # the option is off
        flows.set_match_cn(True, ACTOR)
        verdict = judge(spec.frank)
        assert verdict.category == AUTHENTICATES
        assert (verdict.authentication.user, verdict.authentication.rule) == (username, "match_cn")

    def test_match_cn_without_an_approved_ca_is_not_enough(self, spec):
        User.objects.create_user("frank")
        flows.set_match_cn(True, ACTOR)
        verdict = judge(spec.frank)
        assert verdict.category == CONNECTS_ONLY
        assert "CN 'Frank' is frank's username, but issuer 'Chug and Ring' is not on the approved CA list." in (
            verdict.authentication.reasons
        )


# --- Flexible cert, fixed criteria: Rich's diagram ------------------------------------------


@pytest.fixture
def diagram(db, spec, rich):
    """The diagram's configuration.

    Trusted root store: Toot (with Chug and Ring known as an intermediate) and a self-signed
    certificate installed itself. Trusted CAs: Chug and Ring, and Verisign, which is approved
    but not installed. Match CN to Username/Full Name is on. Rich's profile: several
    thumbprints and the alternate CN "Dick".
    """
    reseller = make_intermediate("Reseller CA", spec.toot)
    certs = {
        "reseller": reseller,
        "installed_self_signed": make_client("Rich's laptop"),
        "uninstalled_self_signed": make_client("Rich's phone"),
        "thumbprint_only": make_client("Richard Q. Public", reseller),
        "dick_by_reseller": make_client("Dick", reseller),
        "unregistered": make_client("Harry", spec.chug),
    }
    install(Store.ROOT, spec.toot, certs["installed_self_signed"])
    install(Store.INTERMEDIATE, spec.chug, reseller)
    install(Store.APPROVED, spec.chug, spec.verisign)
    flows.set_match_cn(True, ACTOR)
    for name in ("installed_self_signed", "uninstalled_self_signed", "thumbprint_only"):
        flows.add_thumbprint(rich, sha1_thumbprint(certs[name].cert), ACTOR)
    flows.add_cn(rich, "Dick", ACTOR)
    return certs


class TestRichsDiagram:
    # Client certs that cannot connect: they do not chain up to the trusted root store.

    def test_a_cert_from_verisign_cannot_connect_although_verisign_is_approved(self, spec, diagram):
        verdict = judge(spec.dick_by_verisign)
        assert verdict.category == CANNOT_CONNECT
        assert verdict.connection.reason == (
            "The chain ends at the self-signed CA 'Verisign', which is not installed in the trusted root store."
        )
        assert verdict.approval.approved  # approved, and still refused: connect comes first

    def test_a_cert_from_an_untrusted_third_party_cannot_connect(self, spec, diagram):
        assert judge(spec.stranger).category == CANNOT_CONNECT

    def test_a_self_signed_cert_on_the_profile_but_not_installed_cannot_connect(self, diagram):
        verdict = judge(diagram["uninstalled_self_signed"])
        assert verdict.category == CANNOT_CONNECT
        assert verdict.connection.reason == (
            "The certificate is self-signed and is not installed in the trusted root store."
        )

    # Client certs that connect but do not authenticate.

    def test_a_matching_cn_whose_ca_is_not_a_trusted_ca_does_not_authenticate(self, diagram):
        verdict = judge(diagram["dick_by_reseller"])
        assert verdict.category == CONNECTS_ONLY
        assert "CN 'Dick' is on rich's profile, but issuer 'Reseller CA' is not on the approved CA list." in (
            verdict.authentication.reasons
        )

    def test_a_thumbprint_that_matches_no_profile_does_not_authenticate(self, diagram):
        verdict = judge(diagram["unregistered"])
        assert verdict.category == CONNECTS_ONLY
        assert any(r.startswith("No user has thumbprint") for r in verdict.authentication.reasons)

    # Client certs that connect and authenticate.

    def test_the_alternate_cn_dick_signed_by_a_trusted_ca_authenticates_rich(self, spec, diagram):
        verdict = judge(spec.dick)
        assert verdict.category == AUTHENTICATES
        assert (verdict.authentication.user, verdict.authentication.rule) == ("rich", trust.RULE_CN)

    def test_the_cn_rich_matches_the_username_because_match_cn_is_on(self, spec, diagram):
        verdict = judge(spec.rich)
        assert verdict.category == AUTHENTICATES
        assert (verdict.authentication.user, verdict.authentication.rule) == ("rich", trust.RULE_MATCH_CN)

    def test_a_thumbprint_on_the_profile_authenticates_whatever_its_ca(self, diagram):
        verdict = judge(diagram["thumbprint_only"])
        assert verdict.category == AUTHENTICATES
        assert verdict.authentication.rule == trust.RULE_THUMBPRINT

    def test_a_self_signed_cert_installed_itself_with_its_thumbprint_on_the_profile_authenticates(self, diagram):
        verdict = judge(diagram["installed_self_signed"])
        assert verdict.category == AUTHENTICATES
        assert verdict.connection.reason == "'Rich's laptop' is itself installed in the trusted root store."


@pytest.mark.django_db
def test_a_cert_from_an_impostor_named_like_an_approved_ca_is_refused_with_the_reason(spec, rich, toot_installed):
    impostor = make_intermediate("Chug and Ring", spec.toot)  # same name, a key of its own
    install(Store.APPROVED, spec.chug)
    flows.add_cn(rich, "Frank", ACTOR)
    forged_frank = make_client("Frank", impostor)
    verdict = judge(forged_frank, [impostor])
    assert verdict.connection.ok
    assert verdict.category == CONNECTS_ONLY
    assert (
        "CN 'Frank' is on rich's profile, but issuer 'Chug and Ring' is not an approved CA: an approved CA has "
        "that name, but its key did not sign this certificate (a different CA using the same name)."
    ) in verdict.authentication.reasons
