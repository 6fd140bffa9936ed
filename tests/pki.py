"""A small PKI for tests: roots, intermediates and client certificates made on the spot.

EC P-256 keys keep it fast. Every certificate is an ``Issued`` (certificate and key), so
a test can sign further certificates with any CA it made.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def _name(cn: str | list[str] | None, org: str | None = None) -> x509.Name:
    attrs = []
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    for value in [cn] if isinstance(cn, str) else cn or []:
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, value))
    return x509.Name(attrs)


def make_cert(
    cn: str | list[str] | None,
    issuer: Issued | None = None,
    *,
    ca: bool = False,
    path_length: int | None = None,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    eku: list | None = None,
    key_usage: dict | None = None,
    key: ec.EllipticCurvePrivateKey | None = None,
    subject: x509.Name | None = None,
    issuer_name: x509.Name | None = None,
    org: str | None = None,
    extensions: list | None = None,
    basic_constraints: bool = True,
    ski: bytes | None = None,
    ski_critical: bool = False,
) -> Issued:
    """One certificate. Without ``issuer`` it is self-signed.

    ``eku`` None means the usual clientAuth for end entities and nothing for CAs; pass []
    to leave the extension out. ``ski`` replaces the subject key identifier computed from the
    key (as a forger may), ``ski_critical`` marks it critical (which RFC 5280 forbids).
    """
    key = key or ec.generate_private_key(ec.SECP256R1())
    subject = subject or _name(cn, org)
    signer_key = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name or (issuer.cert.subject if issuer else subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or NOW - DAY)
        .not_valid_after(not_after or NOW + 365 * DAY)
        .add_extension(
            x509.SubjectKeyIdentifier(ski) if ski else x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
            critical=ski_critical,
        )
    )
    if basic_constraints:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    usage = dict(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )
    usage.update(key_usage or {})
    builder = builder.add_extension(x509.KeyUsage(**usage), critical=True)
    if eku is None:
        eku = [] if ca else [ExtendedKeyUsageOID.CLIENT_AUTH]
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    for extension, critical in extensions or []:
        builder = builder.add_extension(extension, critical=critical)
    return Issued(builder.sign(signer_key, hashes.SHA256()), key)


def make_root(cn: str, **kwargs) -> Issued:
    return make_cert(cn, None, ca=True, **kwargs)


def make_intermediate(cn: str, issuer: Issued, **kwargs) -> Issued:
    return make_cert(cn, issuer, ca=True, **kwargs)


def make_client(cn, issuer: Issued | None = None, **kwargs) -> Issued:
    return make_cert(cn, issuer, ca=False, **kwargs)


def make_impostor(of: Issued) -> Issued:
    """A CA with exactly the same name as ``of`` but a key of its own."""
    return make_cert(None, None, ca=True, subject=of.cert.subject)


def make_cross(of: Issued, issuer: Issued, **kwargs) -> Issued:
    """Another certificate for the CA ``of`` (its name and key), signed by ``issuer``: a cross-signed
    or re-issued CA certificate."""
    return make_cert(None, issuer, ca=True, subject=of.cert.subject, key=of.key, **kwargs)


def make_namesake(of: Issued, issuer: Issued | None = None, **kwargs) -> Issued:
    """A CA with ``of``'s name and subject key identifier but a key of its own, signed by
    ``issuer`` (self-signed without): OpenSSL cannot tell it from ``of`` before checking signatures."""
    ski = of.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    return make_cert(None, issuer, ca=True, subject=of.cert.subject, ski=ski, **kwargs)


def pem_bundle(*issued: Issued) -> bytes:
    return b"".join(i.pem for i in issued)


def make_large_crl(issuer: Issued, count: int, *, number: int = 1) -> bytes:
    """A DER CRL of ``count`` random serials (as CAs make them: in no order, and none a serial of a
    certificate made here), a third with a reason code. Its entries are
    given to the builder at once (adding them one by one copies the list each time, which a CRL
    of a million entries cannot afford)."""
    this_update = NOW - DAY
    reason = x509.CRLReason(x509.ReasonFlags.key_compromise)
    entries = []
    for i in range(count):
        entry = x509.RevokedCertificateBuilder().serial_number(x509.random_serial_number()).revocation_date(this_update)
        if i % 3 == 0:
            entry = entry.add_extension(reason, critical=False)
        entries.append(entry.build())
    builder = x509.CertificateRevocationListBuilder(
        issuer.cert.subject,
        this_update,
        this_update + 7 * DAY,
        [x509.Extension(x509.CRLNumber.oid, False, x509.CRLNumber(number))],
        entries,
    )
    return builder.sign(issuer.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def make_crl(
    issuer: Issued,
    revoked: list[tuple[x509.Certificate | int, x509.ReasonFlags | None]] = (),
    *,
    this_update: dt.datetime | None = None,
    next_update: dt.datetime | None = None,
    number: int = 1,
    delta_of: int | None = None,
    key: ec.EllipticCurvePrivateKey | None = None,
    extensions: list | None = None,
) -> x509.CertificateRevocationList:
    """A CRL issued in ``issuer``'s name, signed by its key (or ``key``, to forge one)."""
    this_update = this_update or NOW - DAY
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.cert.subject)
        .last_update(this_update)
        .next_update(next_update or this_update + 7 * DAY)
        .add_extension(x509.CRLNumber(number), critical=False)
    )
    if delta_of is not None:
        builder = builder.add_extension(x509.DeltaCRLIndicator(delta_of), critical=True)
    for extension, critical in extensions or []:
        builder = builder.add_extension(extension, critical=critical)
    for cert, reason in revoked:
        serial = cert if isinstance(cert, int) else cert.serial_number
        entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(this_update)
        if reason is not None:
            entry = entry.add_extension(x509.CRLReason(reason), critical=False)
        builder = builder.add_revoked_certificate(entry.build())
    return builder.sign(key or issuer.key, hashes.SHA256())


def crl_der(crl: x509.CertificateRevocationList) -> bytes:
    return crl.public_bytes(serialization.Encoding.DER)


def crl_pem(crl: x509.CertificateRevocationList) -> bytes:
    return crl.public_bytes(serialization.Encoding.PEM)
