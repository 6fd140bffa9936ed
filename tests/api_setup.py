"""The API's test cast, on the specification's PKI: who calls, and a service worth calling.

alice is an administrator whose certificate ("alice", signed by Chug and Ring) signs her on;
rich an end user signed on by Frank's certificate (thumbprint on his profile, the
specification's example); both have a token. The service has Toot installed, Chug and Ring
in the intermediate pool and approved, an org CA, and entries in rich's and the org holding
tank. rich has a file in his home folder (a temporary directory), uploaded over HTTPS. A CRL
of Chug's is stored (beside the org CA's own), and Toot has a revocation policy of its own (not
checked; the org default checks nothing either).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from urllib.parse import quote

import pytest
from django.test import Client
from django.utils import timezone

from certs import crls, flows, org_ca, tank, verdicts
from certs.models import Credential, Crl, Store, TankEntry
from certs.x509 import sha1_thumbprint
from files import flows as files
from files.models import Transfer
from tests.conftest import ACTOR, install
from tests.pki import Issued, crl_pem, make_client, make_crl
from users import tokens
from users.models import User


def certificate_headers(issued: Issued) -> dict:
    """The client certificate as the front proxy (nginx, the default format) forwards it."""
    return {"HTTP_X_SSL_CLIENT_CERT": quote(issued.pem.decode(), safe="")}


def bearer(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


@dataclass
class Cast:
    alice: User
    rich: User
    charlie: User
    alice_certificate: Issued
    alice_token: str
    rich_token: str
    rich_credential: Credential
    rich_tank_entry: TankEntry
    org_tank_entry: TankEntry
    rich_transfer: Transfer
    crl: Crl
    identities: dict = field(default_factory=dict)

    def issued_credential(self) -> Credential:
        """A certificate the org CA issues rich now: its entry on his profile."""
        return org_ca.issue_certificate(self.rich, ACTOR, password="a test password").credential

    def call(self, who: str, method: str, path: str, body=None, **extra):
        """A request as one of ``identities``; JSON bodies."""
        client = Client()
        kwargs = {**self.identities[who], **extra}
        if body is not None:
            kwargs.update(data=json.dumps(body), content_type="application/json")
        return getattr(client, method.lower())(path, **kwargs)


@pytest.fixture(name="cast")
def cast_fixture(db, spec, alice, rich, charlie, settings, tmp_path) -> Cast:
    settings.MFT_FILES_DIR = tmp_path / "files"
    install(Store.ROOT, spec.toot)
    install(Store.INTERMEDIATE, spec.chug)
    install(Store.APPROVED, spec.chug)
    org_ca.create("API Test Org CA", ACTOR)
    alice_certificate = make_client("alice", spec.chug)
    alice.https_mode = "cert-or-password"
    alice.save()
    flows.add_thumbprint(alice, sha1_thumbprint(alice_certificate.cert), ACTOR)
    rich.https_mode = "cert"
    rich.save()
    credential, _ = flows.add_thumbprint(rich, sha1_thumbprint(spec.frank.cert), ACTOR)
    # A certificate that connects but authenticates nobody: once with rich's name, once with none.
    wanderer = make_client("Wanderer", spec.chug)
    for username in ("rich", None):
        tank.record_presentation(
            verdicts.judge(wanderer.cert, username=username), wanderer.cert, username, "https", None
        )
    content = b"invoice,amount\n1,100\n"
    (files.home(rich).root / "invoices.csv").write_bytes(content)
    transfer = files.record_transfer(
        rich,
        interface="https",
        direction="upload",
        parts=("invoices.csv",),
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        result="complete",
        started_at=timezone.now(),
        source_address="192.0.2.10",
    )
    stored: list[Crl] = []
    lost = make_client("Lost laptop", spec.chug)
    crls.add_crl_file(crl_pem(make_crl(spec.chug, [(lost.cert, None)])), ACTOR, added=stored)
    crls.set_policy(ACTOR, check="off", ca_thumbprint=sha1_thumbprint(spec.toot.cert))
    _, alice_token = tokens.create_token(alice, "admin script", ACTOR)
    _, rich_token = tokens.create_token(rich, "rich's script", ACTOR)
    cast = Cast(
        alice=alice,
        rich=rich,
        charlie=charlie,
        alice_certificate=alice_certificate,
        alice_token=alice_token,
        rich_token=rich_token,
        rich_credential=credential,
        rich_tank_entry=TankEntry.objects.get(user=rich, kind="thumbprint"),
        org_tank_entry=TankEntry.objects.get(user__isnull=True),
        rich_transfer=transfer,
        crl=stored[0],
    )
    cast.identities = {
        "anonymous": {},
        "end user by certificate": certificate_headers(spec.frank),
        "end user by token": bearer(rich_token),
        "admin by certificate": certificate_headers(alice_certificate),
        "admin by token": bearer(alice_token),
    }
    return cast
