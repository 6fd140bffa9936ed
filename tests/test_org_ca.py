"""The organisational CA: created, rotated, and issuing certificates delivered as PKCS#12."""

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID
from django.test import override_settings

from audit.models import AuditEvent
from certs import verdicts
from certs.flows import FlowError
from certs.issuing import IssuingError
from certs.models import Credential, OrgCA, Store, StoreEntry
from certs.org_ca import create as create_org_ca
from certs.org_ca import issue_certificate
from certs.x509 import directly_issued_by
from tests.conftest import ACTOR

pytestmark = pytest.mark.django_db


@pytest.fixture
def org_ca(db):
    org_ca, _ = create_org_ca("Example Org CA", ACTOR)
    return org_ca


def test_the_org_ca_is_installed_and_approved_when_created(org_ca):
    assert set(StoreEntry.objects.filter(certificate=org_ca.certificate).values_list("store", flat=True)) == {
        Store.ROOT,
        Store.APPROVED,
    }
    cert = org_ca.certificate.to_x509()
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_the_org_ca_key_is_encrypted_at_rest(org_ca):
    assert bytes(org_ca.encrypted_key).startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")


def test_a_changed_key_encryption_key_is_explained(org_ca, rich):
    with (
        override_settings(KEY_ENCRYPTION_KEY="another-key-encryption-key-of-enough-length"),
        pytest.raises(IssuingError, match="cannot be decrypted with the configured key-encryption key"),
    ):
        issue_certificate(rich, ACTOR, password="pw")


def test_a_second_org_ca_needs_a_rotation(org_ca):
    with pytest.raises(FlowError, match="There is an org CA already"):
        create_org_ca("Second", ACTOR)


def test_rotation_keeps_the_old_ca_trusted(org_ca, rich):
    old_issue = issue_certificate(rich, ACTOR, password="pw-123456")
    new_ca, outcome = create_org_ca("Example Org CA 2", ACTOR, rotate=True)
    assert OrgCA.active() == new_ca
    assert any("stays trusted" in m for m in outcome.messages)
    assert verdicts.judge(old_issue.certificate.to_x509()).authentication.ok


@pytest.mark.parametrize("key_type", ["ec-p256", "rsa-2048"])
def test_an_issued_certificate_opens_with_its_password_and_signs_the_user_on(org_ca, rich, key_type):
    issued = issue_certificate(rich, ACTOR, password="open sesame", days=30, key_type=key_type)
    bundle = pkcs12.load_pkcs12(issued.pkcs12, b"open sesame")
    cert = bundle.cert.certificate
    assert cert.subject.rfc4514_string() == "CN=rich"
    assert directly_issued_by(cert, org_ca.certificate.to_x509())
    assert [c.certificate for c in bundle.additional_certs] == [org_ca.certificate.to_x509()]
    assert isinstance(bundle.key, rsa.RSAPrivateKey if key_type.startswith("rsa") else ec.EllipticCurvePrivateKey)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days == 30
    credential = Credential.objects.get(user=rich)
    assert (credential.kind, credential.source) == ("thumbprint", "issued")
    verdict = verdicts.judge(cert)
    assert (verdict.category, verdict.authentication.user) == ("authenticates", "rich")
    assert AuditEvent.objects.filter(action="certificate.issue", target_user=rich).exists()


def test_the_wrong_password_does_not_open_the_pkcs12(org_ca, rich):
    issued = issue_certificate(rich, ACTOR, password="right one")
    with pytest.raises(ValueError):
        pkcs12.load_pkcs12(issued.pkcs12, b"wrong one")


def test_the_cn_can_be_chosen(org_ca, rich):
    issued = issue_certificate(rich, ACTOR, password="pw", cn="Rich Laptop")
    assert issued.certificate.common_name == "Rich Laptop"


def test_issuing_needs_an_org_ca(rich):
    with pytest.raises(FlowError, match="no org CA yet"):
        issue_certificate(rich, ACTOR, password="pw")


def test_a_certificate_cannot_outlive_the_org_ca(rich):
    create_org_ca("Short CA", ACTOR, days=10)
    with pytest.raises(IssuingError, match="would outlive it"):
        issue_certificate(rich, ACTOR, password="pw", days=30)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"days": 0}, "at least one day"),
        ({"days": 100_000}, "at most 3650 days"),
        ({"cn": "x" * 65}, "at most 64"),
        ({"key_type": "dsa-1024"}, "Unknown key type"),
        ({"password": ""}, "password"),
    ],
)
def test_bad_issuing_requests_are_explained(org_ca, rich, kwargs, message):
    arguments = {"password": "pw", **kwargs}
    with pytest.raises((IssuingError, FlowError), match=message):
        issue_certificate(rich, ACTOR, **arguments)
    assert not Credential.objects.filter(user=rich).exists()
