"""The trust engine on its own: no database, plain values in, a verdict out."""

import datetime as dt

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certs import trust
from certs.trust import AUTHENTICATES, CANNOT_CONNECT, CONNECTS_ONLY, Profile, TrustConfig
from certs.x509 import name_key, sha1_thumbprint
from tests.pki import DAY, NOW, make_cert, make_client, make_impostor, make_intermediate, make_root


@pytest.fixture(scope="module")
def pki():
    toot = make_root("Toot")
    chug = make_intermediate("Chug and Ring", toot)
    return {"toot": toot, "chug": chug, "frank": make_client("Frank", chug)}


def connect(cert, chain=(), **config):
    return trust.connect(cert, list(chain), TrustConfig(**config), NOW)


def rich(**kwargs) -> Profile:
    values = {"username": "rich", "full_name": "Rich"}
    values.update(kwargs)
    return Profile(**values)


def verdict(cert, profiles, chain=(), username=None, **config):
    return trust.evaluate(cert, list(chain), TrustConfig(**config), profiles, NOW, username=username)


# --- CA conditions: connect ----------------------------------------------------------------


def test_a_certificate_installed_itself_connects(pki):
    result = connect(pki["frank"].cert, roots=(pki["frank"].cert,))
    assert result.ok
    assert result.path == (pki["frank"].cert,)
    assert "itself installed in the trusted root store" in result.reason


def test_a_certificate_connects_when_its_issuing_ca_is_installed(pki):
    result = connect(pki["frank"].cert, roots=(pki["chug"].cert,))
    assert result.ok
    assert result.anchor == pki["chug"].cert
    assert result.path == (pki["frank"].cert, pki["chug"].cert)


def test_a_certificate_connects_when_a_ca_higher_in_its_chain_is_installed(pki):
    result = connect(pki["frank"].cert, [pki["chug"].cert], roots=(pki["toot"].cert,))
    assert result.ok
    assert [c.subject for c in result.path] == [
        pki["frank"].cert.subject,
        pki["chug"].cert.subject,
        pki["toot"].cert.subject,
    ]
    assert (
        result.reason
        == "'Frank' chains up via 'Chug and Ring' to 'Toot', which is installed in the trusted root store."
    )


@pytest.mark.parametrize("where", ["intermediates", "approved"])
def test_chains_are_built_from_the_intermediate_pool_and_the_approved_list(pki, where):
    result = connect(pki["frank"].cert, roots=(pki["toot"].cert,), **{where: (pki["chug"].cert,)})
    assert result.ok


def test_a_certificate_that_chains_to_nothing_installed_cannot_connect(pki):
    result = connect(pki["frank"].cert, [pki["chug"].cert], roots=(make_root("Other").cert,))
    assert not result.ok
    assert result.reason == (
        "'Chug and Ring' is signed by 'Toot', which is neither installed in the trusted root store "
        "nor chains up to a certificate there."
    )


def test_a_missing_intermediate_is_named(pki):
    result = connect(pki["frank"].cert, roots=(pki["toot"].cert,))
    assert not result.ok
    assert result.reason == (
        "'Frank' is signed by 'Chug and Ring', which is neither installed in the trusted root "
        "store nor chains up to a certificate there."
    )


def test_nothing_connects_when_the_root_store_is_empty(pki):
    result = connect(pki["frank"].cert, [pki["chug"].cert, pki["toot"].cert])
    assert not result.ok
    assert "root store is empty" in result.reason


def test_a_root_sent_along_in_the_chain_is_not_trusted(pki):
    result = connect(pki["frank"].cert, [pki["chug"].cert, pki["toot"].cert], roots=(make_root("Other").cert,))
    assert not result.ok
    assert "self-signed CA 'Toot'" in result.reason


def test_a_self_signed_certificate_that_is_not_installed_cannot_connect():
    selfie = make_client("Selfie")
    result = connect(selfie.cert, roots=(make_root("Other").cert,))
    assert not result.ok
    assert result.reason == "The certificate is self-signed and is not installed in the trusted root store."


def test_a_certificate_with_a_forged_issuer_name_cannot_connect(pki):
    forger = make_root("Forger")
    forged = make_cert("Frank", forger, issuer_name=pki["chug"].cert.subject)
    result = connect(forged.cert, [pki["chug"].cert], roots=(pki["toot"].cert,))
    assert not result.ok
    assert result.reason == (
        "'Frank' is signed by 'Chug and Ring', but no certificate named 'Chug and Ring' that the app "
        "knows verifies its signature, so it does not chain up to the trusted root store."
    )


def test_an_expired_certificate_cannot_connect_even_when_installed(pki):
    old = make_client("Old", pki["chug"], not_before=NOW - 10 * DAY, not_after=NOW - DAY)
    for roots in [(pki["chug"].cert,), (old.cert,)]:
        result = connect(old.cert, roots=roots)
        assert not result.ok
        assert result.reason.startswith("The certificate expired on ")


def test_a_certificate_that_is_not_valid_yet_cannot_connect(pki):
    early = make_client("Early", pki["chug"], not_before=NOW + DAY, not_after=NOW + 9 * DAY)
    result = connect(early.cert, roots=(pki["chug"].cert,))
    assert not result.ok
    assert "not valid yet" in result.reason


def test_an_expired_intermediate_is_named(pki):
    old_ca = make_intermediate("Old CA", pki["toot"], not_before=NOW - 10 * DAY, not_after=NOW - DAY)
    leaf = make_client("Frank", old_ca, not_before=NOW - 9 * DAY)
    result = connect(leaf.cert, [old_ca.cert], roots=(pki["toot"].cert,))
    assert not result.ok
    assert result.reason.startswith("CA 'Old CA' expired on ")


def test_a_certificate_that_is_not_a_ca_cannot_sign_clients(pki):
    not_ca = make_client("Not a CA", pki["toot"])
    leaf = make_client("Frank", not_ca)
    result = connect(leaf.cert, [not_ca.cert], roots=(pki["toot"].cert,))
    assert not result.ok
    assert "'Not a CA' signs other certificates but is marked as not a CA" in result.reason


def test_path_length_constraints_are_enforced(pki):
    root = make_root("Root Zero", path_length=0)
    sub = make_intermediate("Sub", root)
    leaf = make_client("Frank", sub)
    result = connect(leaf.cert, [sub.cert], roots=(root.cert,))
    assert not result.ok
    assert "path length constraint of 'Root Zero'" in result.reason


def test_name_constraints_are_enforced():
    org = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Good Org")])
    root = make_root(
        "Constrained Root",
        extensions=[(x509.NameConstraints(permitted_subtrees=[x509.DirectoryName(org)], excluded_subtrees=None), True)],
    )
    inside = make_client("Frank", root, org="Good Org")
    outside = make_client("Frank", root, org="Bad Org")
    assert connect(inside.cert, roots=(root.cert,)).ok
    result = connect(outside.cert, roots=(root.cert,))
    assert not result.ok
    assert "name constraints" in result.reason


def test_a_server_only_certificate_is_not_a_client_certificate(pki):
    server = make_client("Frank", pki["chug"], eku=[ExtendedKeyUsageOID.SERVER_AUTH])
    result = connect(server.cert, roots=(pki["chug"].cert,))
    assert not result.ok
    assert result.reason == (
        "The certificate is not allowed for client authentication: its extended key usage lists only serverAuth."
    )


@pytest.mark.parametrize(
    "eku",
    [[], [ExtendedKeyUsageOID.CLIENT_AUTH], [ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE]],
    ids=["no-eku", "clientAuth", "anyExtendedKeyUsage"],
)
def test_a_client_eku_is_required_only_when_an_eku_is_present(pki, eku):
    leaf = make_client("Frank", pki["chug"], eku=eku)
    assert connect(leaf.cert, roots=(pki["chug"].cert,)).ok


def test_a_ca_limited_to_server_authentication_cannot_vouch_for_clients(pki):
    server_ca = make_intermediate("Server CA", pki["toot"], eku=[ExtendedKeyUsageOID.SERVER_AUTH])
    leaf = make_client("Frank", server_ca)
    result = connect(leaf.cert, [server_ca.cert], roots=(pki["toot"].cert,))
    assert not result.ok
    assert "CA 'Server CA' is not allowed for client authentication" in result.reason


def test_a_key_that_may_not_sign_cannot_sign_on(pki):
    leaf = make_client("Frank", pki["chug"], key_usage={"digital_signature": False, "key_encipherment": True})
    result = connect(leaf.cert, roots=(pki["chug"].cert,))
    assert not result.ok
    assert "neither digital signatures nor key agreement" in result.reason


def test_a_failed_connection_still_shows_as_much_of_the_chain_as_it_can(pki):
    result = connect(pki["frank"].cert, [pki["chug"].cert, pki["toot"].cert], roots=(make_root("Other").cert,))
    assert [c.subject for c in result.path] == [
        pki["frank"].cert.subject,
        pki["chug"].cert.subject,
        pki["toot"].cert.subject,
    ]


# --- credential conditions: authenticate ---------------------------------------------------


@pytest.fixture(scope="module")
def setup(pki):
    return {"roots": (pki["toot"].cert,), "intermediates": (pki["chug"].cert,)}


def test_a_thumbprint_on_the_profile_authenticates_without_any_approved_ca(pki, setup):
    profile = rich(thumbprints=frozenset({sha1_thumbprint(pki["frank"].cert)}))
    result = verdict(pki["frank"].cert, [profile], **setup)
    assert result.category == AUTHENTICATES
    assert result.authentication.user == "rich"
    assert result.authentication.rule == trust.RULE_THUMBPRINT


def test_a_cn_on_the_profile_needs_an_approved_issuing_ca(pki, setup):
    profile = rich(cns=frozenset({name_key("Frank")}))
    refused = verdict(pki["frank"].cert, [profile], **setup)
    assert refused.category == CONNECTS_ONLY
    assert "CN 'Frank' is on rich's profile, but issuer 'Chug and Ring' is not on the approved CA list." in (
        refused.authentication.reasons
    )
    accepted = verdict(pki["frank"].cert, [profile], approved=(pki["chug"].cert,), **setup)
    assert accepted.category == AUTHENTICATES
    assert accepted.authentication.rule == trust.RULE_CN


def test_approving_a_higher_ca_does_not_approve_the_issuing_one(pki, setup):
    profile = rich(cns=frozenset({name_key("Frank")}))
    result = verdict(pki["frank"].cert, [profile], approved=(pki["toot"].cert,), **setup)
    assert result.category == CONNECTS_ONLY


def test_cn_comparison_ignores_case_and_spacing(pki, setup):
    profile = rich(cns=frozenset({name_key("  FRANK ")}))
    result = verdict(pki["frank"].cert, [profile], approved=(pki["chug"].cert,), **setup)
    assert result.authentication.ok


def test_match_cn_authenticates_by_username_or_full_name_when_on(pki, setup):
    for profile in [Profile("frank"), Profile("f.jones", full_name="Frank")]:
        off = verdict(pki["frank"].cert, [profile], approved=(pki["chug"].cert,), **setup)
        assert not off.authentication.ok
        assert "The Match Cert CN to Username/Full Name option is off." in off.authentication.reasons
        on = verdict(pki["frank"].cert, [profile], approved=(pki["chug"].cert,), match_cn=True, **setup)
        assert on.authentication.ok
        assert on.authentication.rule == trust.RULE_MATCH_CN


def test_match_cn_still_needs_an_approved_ca(pki, setup):
    result = verdict(pki["frank"].cert, [Profile("frank")], match_cn=True, **setup)
    assert not result.authentication.ok
    assert "CN 'Frank' is frank's username, but issuer 'Chug and Ring' is not on the approved CA list." in (
        result.authentication.reasons
    )


def test_an_impostor_ca_with_an_approved_name_does_not_approve(pki, setup):
    impostor = make_impostor(pki["chug"])
    leaf = make_client("Frank", impostor)
    profile = rich(cns=frozenset({name_key("Frank")}))
    result = verdict(leaf.cert, [profile], approved=(pki["chug"].cert,), roots=(impostor.cert,))
    assert result.connection.ok  # the impostor itself is installed, so it connects...
    assert not result.authentication.ok  # ...but a name is not a key
    assert any("an approved CA has that name, but its key did not sign" in r for r in result.authentication.reasons)


def test_an_impostor_ca_under_the_same_root_does_not_approve(pki):
    impostor = make_cert(None, pki["toot"], ca=True, subject=pki["chug"].cert.subject)
    leaf = make_client("Frank", impostor)
    profile = rich(cns=frozenset({name_key("Frank")}))
    result = verdict(leaf.cert, [profile], [impostor.cert], roots=(pki["toot"].cert,), approved=(pki["chug"].cert,))
    assert result.connection.ok
    assert result.category == CONNECTS_ONLY


def test_a_reissued_certificate_of_an_approved_ca_approves(pki, setup):
    reissued = make_cert(None, pki["toot"], ca=True, subject=pki["chug"].cert.subject, key=pki["chug"].key)
    assert reissued.cert != pki["chug"].cert
    profile = rich(cns=frozenset({name_key("Frank")}))
    result = verdict(pki["frank"].cert, [profile], approved=(reissued.cert,), **setup)
    assert result.authentication.ok


@pytest.mark.parametrize(
    ("cn", "reason"),
    [
        (None, "The certificate has no CN, so CN rules do not apply."),
        (["Frank", "Rich"], "The certificate has several CNs ('Frank', 'Rich'), so CN rules do not apply."),
        ("   ", "The certificate's CN is blank, so CN rules do not apply."),
    ],
)
def test_a_certificate_without_exactly_one_cn_never_matches_a_cn_rule(pki, setup, cn, reason):
    leaf = make_client(cn, pki["chug"])
    profile = Profile("Frank", full_name="Rich", cns=frozenset({name_key("Frank"), name_key("Rich"), ""}))
    result = verdict(leaf.cert, [profile], approved=(pki["chug"].cert,), match_cn=True, **setup)
    assert not result.authentication.ok
    assert reason in result.authentication.reasons


def test_a_certificate_that_authenticates_several_users_needs_a_username(pki, setup):
    thumb = frozenset({sha1_thumbprint(pki["frank"].cert)})
    profiles = [rich(thumbprints=thumb), Profile("frank2", thumbprints=thumb)]
    ambiguous = verdict(pki["frank"].cert, profiles, **setup)
    assert not ambiguous.authentication.ok
    assert ambiguous.authentication.reasons[0] == (
        "The certificate authenticates several users ('rich', 'frank2'); a username must be given to choose one."
    )
    chosen = verdict(pki["frank"].cert, profiles, username="FRANK2", **setup)
    assert chosen.authentication.ok and chosen.authentication.user == "frank2"


def test_an_inactive_user_is_never_authenticated(pki, setup):
    profile = rich(is_active=False, thumbprints=frozenset({sha1_thumbprint(pki["frank"].cert)}))
    result = verdict(pki["frank"].cert, [profile], **setup)
    assert not result.authentication.ok
    assert "User 'rich' is inactive, so no certificate signs them on." in result.authentication.reasons


def test_an_unknown_username_is_named(pki, setup):
    result = verdict(pki["frank"].cert, [], username="nobody", **setup)
    assert result.authentication.reasons == ("There is no user 'nobody'.",)


def test_nobody_is_authenticated_by_a_certificate_that_cannot_connect(pki):
    profile = rich(thumbprints=frozenset({sha1_thumbprint(pki["frank"].cert)}))
    result = verdict(pki["frank"].cert, [profile], roots=(make_root("Other").cert,))
    assert result.category == CANNOT_CONNECT
    assert not result.authentication.ok
    assert result.authentication.reasons[0].startswith("The certificate cannot connect, so it cannot authenticate")
    assert result.category_text == "Cannot connect"


def test_without_candidates_every_rule_says_why_it_failed(pki, setup):
    result = verdict(pki["frank"].cert, [], match_cn=True, **setup)
    reasons = result.authentication.reasons
    assert any(r.startswith("No user has thumbprint ") for r in reasons)
    assert "No user has CN 'Frank' on their profile." in reasons
    assert "No user has 'Frank' as username or full name." in reasons


def test_the_rules_apply_in_the_specifications_order(pki, setup):
    profile = rich(
        username="Frank",
        thumbprints=frozenset({sha1_thumbprint(pki["frank"].cert)}),
        cns=frozenset({name_key("Frank")}),
    )
    result = verdict(pki["frank"].cert, [profile], approved=(pki["chug"].cert,), match_cn=True, **setup)
    assert result.authentication.rule == trust.RULE_THUMBPRINT
    assert all(check.held for _, check in result.authentication.decisions[0].checks)


def test_the_verdict_uses_the_moment_it_is_given(pki, setup):
    later = NOW + 400 * DAY
    result = trust.evaluate(pki["frank"].cert, [], TrustConfig(**setup), [], later)
    assert not result.connection.ok
    assert "expired" in result.connection.reason
    assert isinstance(later, dt.datetime)


def test_an_installed_certificate_that_is_not_a_ca_vouches_for_nothing_it_signs():
    # No basic constraints, but a key that may sign certificates: OpenSSL alone would treat it as a CA.
    not_ca = make_cert(
        "Installed client",
        None,
        basic_constraints=False,
        key_usage={"digital_signature": True, "key_cert_sign": True},
    )
    child = make_client("Child", not_ca)
    assert connect(not_ca.cert, roots=(not_ca.cert,)).ok  # it connects itself...
    result = connect(child.cert, roots=(not_ca.cert,))
    assert not result.ok  # ...but what it signs does not
    assert "'Installed client'" in result.reason


@pytest.mark.filterwarnings("ignore:Attribute's length")
@pytest.mark.parametrize(
    ("cn", "reason"),
    [
        ("Fr\x00ank", "holds control or invisible characters, so CN rules do not apply"),
        ("F" * 300, "is longer than 256 characters, so CN rules do not apply"),
    ],
)
def test_unusable_cns_never_match(pki, setup, cn, reason):
    # Over-long CNs break X.509's limit, so the builder has to be told not to check.
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn, _validate=False)])
    leaf = make_client(None, pki["chug"], subject=subject)
    profile = Profile(cn, cns=frozenset({name_key(cn)}))
    result = verdict(leaf.cert, [profile], approved=(pki["chug"].cert,), match_cn=True, **setup)
    assert not result.authentication.ok
    assert any(reason in r for r in result.authentication.reasons)


# --- reasons that say what really went wrong -----------------------------------------------------


def test_a_certificate_signed_by_an_installed_non_ca_says_so():
    """Once the reason said the installed certificate "is neither installed ... nor chains up"."""
    leaf_ca = make_client("Someone's Laptop")
    signed = make_client("Signed By A Leaf", leaf_ca)
    connection = trust.connect(signed.cert, [], TrustConfig(roots=(leaf_ca.cert,)), NOW)
    assert not connection.ok
    assert "'Someone's Laptop', which is installed in the trusted root store but is not a CA" in connection.reason


def test_too_many_names_for_the_name_constraints_is_explained():
    """OpenSSL's own words were "unspecified certificate verification error"."""
    names = 1100
    constraints = x509.NameConstraints(
        permitted_subtrees=[x509.DNSName(f"d{i}.example") for i in range(names)], excluded_subtrees=None
    )
    root = make_root("Constrained Root", extensions=[(constraints, True)])
    many = x509.SubjectAlternativeName([x509.DNSName(f"h{i}.d{i}.example") for i in range(names)])
    leaf = make_client("Many Names", root, extensions=[(many, False)])
    connection = trust.connect(leaf.cert, [], TrustConfig(roots=(root.cert,)), NOW)
    assert not connection.ok
    assert "carries more names than can be checked against the name constraints of a CA above it" in connection.reason
