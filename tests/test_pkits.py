"""The connect verdict against NIST PKITS (sections 4.1-4.3, 4.5-4.7 and 4.16).

Every case of those sections that needs no revocation check is run with the PKITS trust
anchor as the only installed root, at the suite's validation time. Cases the engine
decides differently on purpose are listed below, with the reason (and in the README).
"""

import datetime as dt
import json
from pathlib import Path

import pytest

from certs import trust
from certs.loading import CertificateLoadError, load_certificates

PKITS = Path(__file__).parent / "data" / "pkits"
SUITE = json.loads((PKITS / "cases.json").read_text())
WHEN = dt.datetime.fromisoformat(SUITE["validation_time"].replace("Z", "+00:00"))
SECTIONS = ("4.1.", "4.2.", "4.3.", "4.5.", "4.6.", "4.7.", "4.16.")

# Invalid only because a CRL cannot be trusted: the CA lacks cRLSign, which matters once
# revocation is checked. Without revocation checking the path itself is valid.
NEEDS_REVOCATION = {"4.7.4", "4.7.5"}
# Refused on purpose: the end entity's DSA key inherits its parameters from the CA, which
# the certificate library does not parse. DSA is obsolete for new signatures (FIPS 186-5).
REFUSED_ON_PURPOSE = {"4.1.5": "DSA public key with inherited parameters"}

CASES = [
    case
    for case in SUITE["cases"]
    if case["pkits_section"].startswith(SECTIONS)
    and case["failure_kind"] != "revoked"
    and case["pkits_section"] not in NEEDS_REVOCATION
]


def load(name):
    return load_certificates((PKITS / "certs" / name).read_bytes())[0]


def test_the_selection_covers_every_section():
    assert {c["pkits_section"].rsplit(".", 1)[0] for c in CASES} == {s.rstrip(".") for s in SECTIONS}
    assert len(CASES) == 50


@pytest.mark.parametrize("case", CASES, ids=[f"{c['pkits_section']}-{c['id']}" for c in CASES])
def test_connect_agrees_with_pkits(case):
    config = trust.TrustConfig(roots=(load(SUITE["trust_anchor"]),))
    section = case["pkits_section"]
    if section in REFUSED_ON_PURPOSE:
        with pytest.raises(CertificateLoadError):
            load(case["end_entity"])
        return
    chain = [load(name) for name in case["intermediates"]]
    result = trust.connect(load(case["end_entity"]), chain, config, WHEN)
    assert result.ok == (case["expected"] == "valid"), result.reason
    if not result.ok:
        assert result.reason.endswith("."), "every refusal is a sentence"


@pytest.mark.parametrize("offered", ["reversed", "pool"])
@pytest.mark.parametrize("case", CASES, ids=[f"{c['pkits_section']}-{c['id']}" for c in CASES])
def test_the_order_the_ca_certificates_come_in_changes_nothing(case, offered):
    """The path builder tries every candidate: the chain reversed, or the CAs in the pool, agree."""
    if case["pkits_section"] in REFUSED_ON_PURPOSE:
        return
    cas = [load(name) for name in case["intermediates"]][::-1]
    roots = (load(SUITE["trust_anchor"]),)
    if offered == "pool":
        config, chain = trust.TrustConfig(roots=roots, intermediates=tuple(cas)), []
    else:
        config, chain = trust.TrustConfig(roots=roots), cas
    result = trust.connect(load(case["end_entity"]), chain, config, WHEN)
    assert result.ok == (case["expected"] == "valid"), result.reason


@pytest.mark.parametrize("section", sorted(NEEDS_REVOCATION))
def test_cases_that_need_revocation_are_valid_paths_until_revocation_is_checked(section):
    (case,) = [c for c in SUITE["cases"] if c["pkits_section"] == section]
    config = trust.TrustConfig(roots=(load(SUITE["trust_anchor"]),))
    result = trust.connect(load(case["end_entity"]), [load(n) for n in case["intermediates"]], config, WHEN)
    assert result.ok
