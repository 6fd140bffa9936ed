"""Making keys and certificates for the organisational CA. Pure: no Django, no database.

All cryptography is the ``cryptography`` library's; this module only chooses the
parameters a client-certificate PKI needs.
"""

from __future__ import annotations

import datetime as dt
import secrets

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .pfx import PFXError, WrongPassword, open_pfx
from .x509 import CNError, clean_cn

KEY_TYPES = {
    "ec-p256": "EC P-256",
    "rsa-2048": "RSA 2048",
    "rsa-3072": "RSA 3072",
    "rsa-4096": "RSA 4096",
}
MAX_CLIENT_DAYS = 3650
MAX_CA_DAYS = 30 * 365
# Issued certificates start a little in the past so that a client with a slow clock can use them.
BACKDATE = dt.timedelta(minutes=5)


class IssuingError(ValueError):
    """A request to make a certificate cannot be met; the message says why."""


def new_private_key(key_type: str):
    if key_type == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type in ("rsa-2048", "rsa-3072", "rsa-4096"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[4:]))
    raise IssuingError(f"Unknown key type '{key_type}'; choose one of {', '.join(KEY_TYPES)}.")


def _check_cn(cn: str) -> str:
    try:
        cn = clean_cn(cn)
    except CNError as exc:
        raise IssuingError(str(exc)) from None
    if len(cn) > 64 or len(cn.encode()) > 64:
        raise IssuingError(
            f"The CN is {len(cn)} characters ({len(cn.encode())} bytes) long; X.509 allows at most 64 "
            "(counted in bytes of UTF-8 for accented and other non-ASCII letters)."
        )
    return cn


def _check_days(days: int, maximum: int) -> int:
    if not isinstance(days, int) or days < 1:
        raise IssuingError("The validity must be at least one day.")
    if days > maximum:
        raise IssuingError(f"The validity can be at most {maximum} days.")
    return days


def _self_signed(cn: str, key, days: int, now: dt.datetime | None) -> x509.CertificateBuilder:
    """A self-signed certificate's builder: name, key, serial and validity (from a few minutes ago)."""
    now = now or dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + dt.timedelta(days=days))
    )


def create_ca(cn: str, key_type: str = "ec-p256", days: int = 10 * 365, now: dt.datetime | None = None):
    """A self-signed CA certificate and its key: the organisational CA.

    It may sign end-entity certificates only (path length 0).
    """
    cn = _check_cn(cn)
    days = _check_days(days, MAX_CA_DAYS)
    key = new_private_key(key_type)
    cert = (
        _self_signed(cn, key, days, now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def issue_client_certificate(
    ca_cert: x509.Certificate,
    ca_key,
    cn: str,
    key_type: str = "ec-p256",
    days: int = 365,
    now: dt.datetime | None = None,
    crl_url: str | None = None,
):
    """A client certificate signed by the CA, with the clientAuth extended key usage, naming
    ``crl_url`` (if given) as its CRL distribution point.

    Returns the certificate and its new private key; the caller hands the key to the user
    and keeps only the certificate.
    """
    cn = _check_cn(cn)
    days = _check_days(days, MAX_CLIENT_DAYS)
    now = now or dt.datetime.now(dt.UTC)
    not_after = now + dt.timedelta(days=days)
    if not_after > ca_cert.not_valid_after_utc:
        raise IssuingError(
            f"The org CA expires on {ca_cert.not_valid_after_utc:%Y-%m-%d}; a certificate valid "
            f"for {days} days would outlive it. Choose fewer days or rotate the org CA."
        )
    if now < ca_cert.not_valid_before_utc:
        raise IssuingError("The org CA is not valid yet.")
    key = new_private_key(key_type)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=isinstance(key, rsa.RSAPrivateKey),
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()), critical=False)
    )
    if crl_url:
        point = x509.DistributionPoint([x509.UniformResourceIdentifier(crl_url)], None, None, None)
        cert = cert.add_extension(x509.CRLDistributionPoints([point]), critical=False)
    return cert.sign(ca_key, hashes.SHA256()), key


def sign_crl(ca_cert, ca_key, revoked, *, number: int, this_update: dt.datetime, next_update: dt.datetime):
    """The CA's CRL: ``revoked`` is (serial, revocation date, ReasonFlags or None) for each
    certificate it revoked. The builder is given every entry at once (adding them one by one
    copies the list each time)."""
    entries = []
    for serial, when, reason in revoked:
        entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when)
        if reason is not None and reason != x509.ReasonFlags.unspecified:
            entry = entry.add_extension(x509.CRLReason(reason), critical=False)
        entries.append(entry.build())
    extensions = [
        x509.Extension(x509.CRLNumber.oid, False, x509.CRLNumber(number)),
        x509.Extension(
            x509.AuthorityKeyIdentifier.oid,
            False,
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
        ),
    ]
    builder = x509.CertificateRevocationListBuilder(ca_cert.subject, this_update, next_update, extensions, entries)
    return builder.sign(ca_key, hashes.SHA256())


def pkcs12_bundle(friendly_name: str, key, cert: x509.Certificate, ca_chain, password: str) -> bytes:
    """A password-protected PKCS#12 file holding the key, the certificate and its CA chain."""
    if not password:
        raise IssuingError("A PKCS#12 file needs a password.")
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(200_000)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(password.encode())
    )
    return pkcs12.serialize_key_and_certificates(friendly_name.encode()[:64], key, cert, list(ca_chain), encryption)


def encrypt_private_key(key, secret: str) -> bytes:
    """The key as encrypted PKCS#8 PEM, for storage at rest."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(secret.encode()),
    )


def decrypt_private_key(data: bytes, secret: str):
    try:
        return serialization.load_pem_private_key(bytes(data), secret.encode())
    except (ValueError, TypeError):
        raise IssuingError(
            "The org CA's private key cannot be decrypted with the configured key-encryption "
            "key (MFT_KEY_ENCRYPTION_KEY). Was it changed? Restore it, or create a new org CA."
        ) from None


def load_ca_pkcs12(data: bytes, password: str):
    """The CA certificate and private key from a PKCS#12 file, checked to belong together."""
    if not data:
        raise IssuingError("The file is empty.")
    try:
        loaded = open_pfx(data, [password.encode() if password else None], want_key=True)
    except WrongPassword:
        if not password:
            raise IssuingError("This PKCS#12 file is protected: give its password.") from None
        raise IssuingError("The password does not open this PKCS#12 file (or it is not a PKCS#12 file).") from None
    except PFXError as exc:
        raise IssuingError(str(exc)) from None
    if loaded.key is None:
        raise IssuingError("The PKCS#12 file holds no private key; an org CA needs its key to sign certificates.")
    if not loaded.certificates:
        raise IssuingError("The PKCS#12 file holds a key but no certificate.")
    cert = loaded.certificates[0]
    if cert.public_key() != loaded.key.public_key():
        raise IssuingError("The private key in the file does not belong to its certificate.")
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise IssuingError("The certificate in the file is not a CA certificate, so it cannot sign certificates.")
    if not isinstance(loaded.key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        raise IssuingError("Only EC and RSA CA keys are supported.")
    return cert, loaded.key


# Letters and digits that cannot be mistaken for one another when read aloud or copied by hand.
_PASSWORD_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789"


def generate_password(groups: int = 4, size: int = 5) -> str:
    """A random password for a PKCS#12 file, e.g. 'k7Qm2-XpR4t-...' (about 115 bits)."""
    return "-".join("".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(size)) for _ in range(groups))


def create_server_certificate(hostnames: list[str], addresses: list[str], days: int = 397, now=None):
    """A self-signed TLS server certificate for the built-in HTTPS server (not a CA)."""
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    alternatives = [x509.DNSName(h) for h in hostnames] + [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
    cert = (
        _self_signed(hostnames[0] if hostnames else "localhost", key, days, now)
        .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key
