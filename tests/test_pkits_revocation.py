"""Revocation against NIST PKITS: sections 4.4 (basic CRLs), 4.14 (distribution points), 4.15
(delta CRLs), and 4.7.4/4.7.5 (a CA whose key may not sign CRLs).

Each case is run through the store as an administrator would: the trust anchor installed, the
case's CA certificates in the intermediate pool, the trust anchor's CRL and the case's CRLs
added (a CRL that is refused is simply not stored), and the org policy "CRL, refuse when
unknown". The verdict is the one sign-on reaches. Cases decided differently on purpose would be
listed below and in the README; there are none.
"""

import json
from pathlib import Path

import pytest
from django.utils import timezone

from certs import crls, flows, verdicts
from certs.loading import load_certificates
from certs.models import Store
from certs.x509 import is_ca

ACTOR = "test suite"
PKITS = Path(__file__).parent / "data" / "pkits"
SUITE = json.loads((PKITS / "cases.json").read_text())
WHEN = timezone.datetime.fromisoformat(SUITE["validation_time"].replace("Z", "+00:00"))
SECTIONS = ("4.4.", "4.14.", "4.15.")
EXTRA = {"4.7.4", "4.7.5"}
REFUSED_ON_PURPOSE: dict[str, str] = {}

CASES = [c for c in SUITE["cases"] if c["pkits_section"].startswith(SECTIONS) or c["pkits_section"] in EXTRA]


def load(name):
    return load_certificates((PKITS / "certs" / name).read_bytes())[0]


def read(folder, name):
    return name, (PKITS / folder / name).read_bytes()


def test_the_selection_covers_every_case():
    assert len(CASES) == 21 + 35 + 10 + 2


@pytest.mark.django_db
@pytest.mark.parametrize("case", CASES, ids=[f"{c['pkits_section']}-{c['id']}" for c in CASES])
def test_revocation_agrees_with_pkits(case):
    flows.add_to_store(Store.ROOT, [load(SUITE["trust_anchor"])], ACTOR)
    chain = [load(name) for name in case["intermediates"]]
    # CA certificates go to the intermediate pool; a separate CRL-signing certificate is given
    # with the CRLs it signed.
    flows.add_to_store(Store.INTERMEDIATE, [c for c in chain if is_ca(c)], ACTOR)
    signers = [read("certs", name) for name, c in zip(case["intermediates"], chain, strict=True) if not is_ca(c)]
    files = [read("crls", name) for name in ["TrustAnchorRootCRL.crl", *case["crls"]]]
    crls.add_crl_files(files + signers, ACTOR)
    crls.set_policy(ACTOR, check="crl", when_unknown="refuse")
    verdicts.clear_caches()
    verdict = verdicts.judge(load(case["end_entity"]), chain, at=WHEN)
    connection = verdict.connection
    expected = case["expected"] == "valid"
    assert connection.ok == expected, connection.reason
    if case["failure_kind"] == "revoked":
        # The certificate is revoked, or (4.4.21) the certificate that signed its CRL is.
        assert "revoked" in connection.reason
    if not connection.ok:
        assert connection.reason.endswith(".")
