"""Path building: every candidate path is tried, whatever the order the certificates come in.

OpenSSL takes the first issuer it is offered that matches by name and key identifier and
never tries another. These tests offer it the wrong one first (a cross-signed copy leading to
a root nobody trusts, a copy under name constraints the certificate breaks, a CA of the same
name and key identifier with another key) and check the right path is still found, and that
nothing is accepted that RFC 5280 refuses.
"""

import time

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certs import chain as doctor
from certs import paths, trust
from certs.trust import TrustConfig
from certs.x509 import sha256_fingerprint
from tests.pki import (
    DAY,
    NOW,
    make_cert,
    make_client,
    make_cross,
    make_intermediate,
    make_namesake,
    make_root,
)


def connect(cert, chain=(), **config):
    return trust.connect(cert.cert, [c.cert for c in chain], TrustConfig(**config), NOW)


def search(cert, chain=(), **config):
    """Run a search to its end, as a refused certificate does."""
    found = paths.PathSearch(cert.cert, [c.cert for c in chain], TrustConfig(**config), NOW)
    verified = list(found.paths())
    return found, verified


def subjects(path):
    return [c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value for c in path]


@pytest.fixture(scope="module")
def cross():
    """The CA 'Cross CA' has one key and two certificates: one signed by 'Old Root' (not
    installed), one by 'New Root' (installed)."""
    old_root, new_root = make_root("Old Root"), make_root("New Root")
    by_old = make_intermediate("Cross CA", old_root)
    by_new = make_cross(by_old, new_root)
    return {
        "old_root": old_root,
        "new_root": new_root,
        "by_old": by_old,
        "by_new": by_new,
        "leaf": make_client("Frank", by_old),
    }


# --- cross-signed and re-keyed intermediates -----------------------------------------------------


@pytest.mark.parametrize("order", ["old-first", "new-first"])
def test_cross_signed_intermediates_connect_in_either_order(cross, order):
    chain = [cross["by_old"], cross["by_new"]]
    if order == "new-first":
        chain.reverse()
    result = connect(cross["leaf"], chain, roots=(cross["new_root"].cert,))
    assert result.ok, result.reason
    assert result.path == (cross["leaf"].cert, cross["by_new"].cert, cross["new_root"].cert)
    assert (
        result.reason == "'Frank' chains up via 'Cross CA' to 'New Root', which is installed in the trusted root store."
    )


@pytest.mark.parametrize("where", ["intermediates", "approved"])
def test_cross_signed_intermediates_connect_from_the_pool_in_either_order(cross, where):
    for pool in [(cross["by_old"].cert, cross["by_new"].cert), (cross["by_new"].cert, cross["by_old"].cert)]:
        result = connect(cross["leaf"], roots=(cross["new_root"].cert,), **{where: pool})
        assert result.ok, result.reason


def test_the_old_path_alone_still_does_not_connect(cross):
    result = connect(cross["leaf"], [cross["by_old"]], roots=(cross["new_root"].cert,))
    assert not result.ok
    assert result.reason == (
        "'Cross CA' is signed by 'Old Root', which is neither installed in the trusted root store "
        "nor chains up to a certificate there."
    )


def test_a_re_keyed_ca_connects_whichever_certificate_comes_first():
    root = make_root("Root")
    old = make_intermediate("Issuing CA", root)
    new = make_intermediate("Issuing CA", root)  # the same name, a new key
    leaf = make_client("Frank", new)
    for chain in ([old, new], [new, old]):
        result = connect(leaf, chain, roots=(root.cert,))
        assert result.ok and result.path[1] == new.cert


def test_when_both_paths_fail_the_one_that_reached_an_anchor_is_reported(cross):
    expired = make_cross(cross["by_old"], cross["new_root"], not_before=NOW - 9 * DAY, not_after=NOW - DAY)
    result = connect(cross["leaf"], [cross["by_old"], expired], roots=(cross["new_root"].cert,))
    assert not result.ok
    assert result.reason.startswith("CA 'Cross CA' expired on ")
    assert result.path == (cross["leaf"].cert, expired.cert, cross["new_root"].cert)
    assert result.failed_depth == 1


def test_the_doctor_draws_the_path_the_refusal_is_about(cross):
    expired = make_cross(cross["by_old"], cross["new_root"], not_before=NOW - 9 * DAY, not_after=NOW - DAY)
    config = TrustConfig(roots=(cross["new_root"].cert,))
    chain = [cross["by_old"].cert, expired.cert]
    connection = trust.connect(cross["leaf"].cert, chain, config, NOW)
    picture = doctor.picture(cross["leaf"].cert, chain, config, connection, NOW)
    drawn = [box.sha256 for box in picture.boxes]
    assert drawn == [sha256_fingerprint(c) for c in (cross["leaf"].cert, expired.cert, cross["new_root"].cert)]
    assert [box.stops_here for box in picture.boxes] == [False, True, False]
    assert picture.boxes[1].validity == "expired"


# --- name constraints on one path, none on the other ---------------------------------------------


@pytest.fixture(scope="module")
def constrained():
    """'Partner CA' is certified by 'Strict Root' only for O=Good Org, and by 'Open Root' for anything."""
    strict, open_ = make_root("Strict Root"), make_root("Open Root")
    good = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Good Org")])
    partner = make_intermediate("Partner CA", open_)
    limited = make_cross(
        partner,
        strict,
        extensions=[
            (x509.NameConstraints(permitted_subtrees=[x509.DirectoryName(good)], excluded_subtrees=None), True)
        ],
    )
    return {
        "strict": strict,
        "open": open_,
        "partner": partner,
        "limited": limited,
        "inside": make_client("Frank", partner, org="Good Org"),
        "outside": make_client("Mallory", partner, org="Bad Org"),
    }


def test_a_certificate_outside_the_name_constraints_connects_only_through_the_unconstrained_path(constrained):
    roots = (constrained["strict"].cert, constrained["open"].cert)
    result = connect(constrained["outside"], [constrained["limited"], constrained["partner"]], roots=roots)
    assert result.ok, result.reason
    assert result.path == (constrained["outside"].cert, constrained["partner"].cert, constrained["open"].cert)


def test_without_the_unconstrained_path_the_constraint_refuses_it(constrained):
    roots = (constrained["strict"].cert, constrained["open"].cert)
    result = connect(constrained["outside"], [constrained["limited"]], roots=roots)
    assert not result.ok
    assert "'Mallory' has a name outside the name constraints of a CA above it" in result.reason
    # The unconstrained certificate is known, but its root is not installed: still refused.
    result = connect(constrained["outside"], [constrained["limited"], constrained["partner"]], roots=roots[:1])
    assert not result.ok
    assert "name constraints" in result.reason


def test_a_certificate_inside_the_name_constraints_connects_through_either(constrained):
    result = connect(constrained["inside"], [constrained["limited"]], roots=(constrained["strict"].cert,))
    assert result.ok and result.anchor == constrained["strict"].cert
    result = connect(
        constrained["inside"],
        [constrained["limited"], constrained["partner"]],
        roots=(constrained["strict"].cert, constrained["open"].cert),
    )
    assert result.ok


# --- a CA of the same name with another key ------------------------------------------------------


@pytest.fixture(scope="module")
def namesake():
    toot = make_root("Toot")
    chug = make_intermediate("Chug and Ring", toot)
    # The same name and key identifier, another key, and a valid certificate from the same root.
    impostor = make_namesake(chug, toot)
    return {"toot": toot, "chug": chug, "impostor": impostor, "frank": make_client("Frank", chug)}


def test_a_same_name_ca_offered_first_does_not_hide_the_right_one(namesake):
    result = connect(namesake["frank"], [namesake["impostor"], namesake["chug"]], roots=(namesake["toot"].cert,))
    assert result.ok, result.reason
    assert result.path[1] == namesake["chug"].cert


@pytest.mark.parametrize("where", ["intermediates", "approved"])
def test_a_same_name_ca_first_in_the_pool_does_not_hide_the_right_one(namesake, where):
    pool = (namesake["impostor"].cert, namesake["chug"].cert)
    result = connect(namesake["frank"], roots=(namesake["toot"].cert,), **{where: pool})
    assert result.ok, result.reason
    assert result.path[1] == namesake["chug"].cert


def test_a_same_name_ca_alone_is_refused_for_its_signature(namesake):
    result = connect(namesake["frank"], [namesake["impostor"]], roots=(namesake["toot"].cert,))
    assert not result.ok
    assert "no certificate named 'Chug and Ring' that the app knows verifies its signature" in result.reason


def test_what_a_same_name_ca_signs_is_never_accepted_through_the_real_one(namesake):
    forged = make_client("Frank", namesake["impostor"])
    result = connect(forged, [namesake["chug"]], roots=(namesake["toot"].cert,), intermediates=(namesake["chug"].cert,))
    assert not result.ok


# --- loops and bounds ---------------------------------------------------------------------------


def test_a_loop_of_cross_signatures_ends():
    a, b = make_root("Loop A"), make_root("Loop B")
    a_by_b, b_by_a = make_cross(a, b), make_cross(b, a)
    leaf = make_client("Frank", a)
    chain = [a_by_b, b_by_a, a, b]
    started = time.perf_counter()
    found, verified = search(
        leaf, chain, roots=(make_root("Elsewhere").cert,), intermediates=(a_by_b.cert, b_by_a.cert)
    )
    assert verified == []
    assert time.perf_counter() - started < 2
    assert found.tried <= paths.MAX_CANDIDATE_PATHS
    assert found.failure.reason.endswith(".")
    # With one of them installed, the loop is a path.
    result = connect(leaf, chain, roots=(b.cert,))
    assert result.ok and result.anchor == b.cert


def test_many_same_name_cas_are_bounded_and_answer_quickly():
    toot = make_root("Toot")
    chug = make_intermediate("Chug and Ring", toot)
    frank = make_client("Frank", chug)
    crowd = tuple(make_namesake(chug, toot).cert for _ in range(150))
    started = time.perf_counter()
    found, verified = search(frank, roots=(toot.cert,), intermediates=crowd + (chug.cert,))
    elapsed = time.perf_counter() - started
    assert elapsed < 2, elapsed
    assert found.tried <= paths.MAX_CANDIDATE_PATHS
    assert found.checks <= paths.MAX_ISSUER_CHECKS
    # Behind the bound the right CA is not reached: refused, never wrongly accepted.
    assert verified == []
    assert not connect(frank, roots=(toot.cert,), intermediates=crowd + (chug.cert,)).ok
    # The same crowd sent by the client costs no more, and its refusal is explained as quickly.
    started = time.perf_counter()
    result = trust.connect(frank.cert, list(crowd) + [chug.cert], TrustConfig(roots=(toot.cert,)), NOW)
    assert time.perf_counter() - started < 2
    assert not result.ok and result.reason.endswith(".")


def test_many_valid_paths_that_all_fail_are_bounded():
    toot = make_root("Toot")
    chug = make_intermediate("Chug and Ring", toot)
    frank = make_client("Frank", chug, not_before=NOW - 9 * DAY, not_after=NOW - DAY)  # expired: every path fails
    copies = tuple(make_cross(chug, toot).cert for _ in range(40))
    started = time.perf_counter()
    found, verified = search(frank, roots=(toot.cert,), intermediates=copies)
    assert time.perf_counter() - started < 2
    assert verified == [] and found.tried == paths.MAX_CANDIDATE_PATHS
    assert found.failure.reason.startswith("The certificate expired on ")


def test_chains_longer_than_the_bound_are_not_built():
    root = make_root("Root")
    cas, issuer = [], root
    for i in range(paths.MAX_PATH_LENGTH):
        issuer = make_intermediate(f"Level {i}", issuer)
        cas.append(issuer)
    leaf = make_client("Frank", issuer)
    result = connect(leaf, list(reversed(cas)), roots=(root.cert,))
    assert not result.ok
    assert "too long" in result.reason or "at most" in result.reason


def test_the_common_case_runs_the_verifier_once():
    toot = make_root("Toot")
    chug = make_intermediate("Chug and Ring", toot)
    found, verified = search(make_client("Frank", chug), roots=(toot.cert,), intermediates=(chug.cert,))
    assert len(verified) >= 1
    found = paths.PathSearch(
        make_client("Frank", chug).cert, [], TrustConfig(roots=(toot.cert,), intermediates=(chug.cert,)), NOW
    )
    assert next(found.paths())
    assert found.tried == 1 and found.checks == 0


# --- what happens after the verifier: usage ---------------------------------------------------------


def test_a_ca_copy_limited_to_servers_does_not_hide_one_that_is_not(cross):
    server_only = make_cross(cross["by_old"], cross["new_root"], eku=[ExtendedKeyUsageOID.SERVER_AUTH])
    result = connect(cross["leaf"], [server_only, cross["by_new"]], roots=(cross["new_root"].cert,))
    assert result.ok and result.path[1] == cross["by_new"].cert
    result = connect(cross["leaf"], [server_only], roots=(cross["new_root"].cert,))
    assert not result.ok and "not allowed for client authentication" in result.reason


# --- reasons that say what really went wrong -----------------------------------------------------


def test_a_root_that_is_not_a_ca_says_so():
    root = make_cert("Not A CA Root", None, ca=False, key_usage={"key_cert_sign": True})
    ca = make_intermediate("Issuing CA", root)
    leaf = make_client("Frank", ca)
    for chain in ([ca], [ca, root]):
        result = connect(leaf, chain, roots=(root.cert,))
        assert not result.ok
        assert "'Not A CA Root', which is installed in the trusted root store but is not a CA" in result.reason
        assert "its basic constraints extension says CA:FALSE" in result.reason
        assert "verifies its signature" not in result.reason


def test_a_root_without_basic_constraints_says_so():
    root = make_cert("No Constraints Root", None, basic_constraints=False, key_usage={"key_cert_sign": True})
    ca = make_intermediate("Issuing CA", root)
    result = connect(make_client("Frank", ca), [ca], roots=(root.cert,))
    assert not result.ok
    assert "'No Constraints Root', which is installed in the trusted root store but is not a CA" in result.reason
    assert "it has no basic constraints extension" in result.reason


def test_an_intermediate_without_basic_constraints_says_so():
    root = make_root("Root")
    ca = make_cert("No Constraints CA", root, basic_constraints=False, key_usage={"key_cert_sign": True})
    result = connect(make_client("Frank", ca), [ca], roots=(root.cert,))
    assert not result.ok
    assert result.reason.startswith(
        "'No Constraints CA' signs other certificates but has no basic constraints extension, so it cannot act as a CA"
    )
    assert result.failed_depth == 1


@pytest.mark.parametrize("where", ["intermediate", "root"])
def test_a_critical_subject_key_identifier_says_so(where):
    if where == "root":
        ca = make_root("Critical SKI CA", ski_critical=True)
        roots, chain = (ca.cert,), []
    else:
        root = make_root("Root")
        ca = make_intermediate("Critical SKI CA", root, ski_critical=True)
        roots, chain = (root.cert,), [ca]
    result = connect(make_client("Frank", ca), chain, roots=roots)
    assert not result.ok
    assert result.reason == (
        "'Critical SKI CA' marks its subject key identifier extension critical, which RFC 5280 forbids "
        "(it must be non-critical), so the certificate is refused."
    )


def test_an_unknown_critical_extension_is_named():
    root = make_root("Root")
    odd = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.55555.1"), b"\x05\x00")
    result = connect(make_client("Frank", root, extensions=[(odd, True)]), roots=(root.cert,))
    assert not result.ok
    assert "critical extension that the validator does not understand (1.3.6.1.4.1.55555.1)" in result.reason
