"""Reading certificate files: PEM (one or many), DER, PKCS#7 and PKCS#12. Pure: no Django.

Every file that cannot be read gets one plain sentence (``CertificateLoadError``), never a
library's internals.
"""

from __future__ import annotations

import base64
import binascii
import re

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from .pfx import PFXError, WrongPassword, open_pfx

# A certificate bundle bigger than this is not something an administrator uploads on purpose.
MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_CERTIFICATES = 1000


class CertificateLoadError(ValueError):
    """A file could not be read as certificates; the message is one sentence for a person."""


_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 #]+)-----(.*?)(?:-----END \1-----|\Z)", re.S)
_KEY_LABELS = {
    b"PRIVATE KEY",
    b"RSA PRIVATE KEY",
    b"EC PRIVATE KEY",
    b"DSA PRIVATE KEY",
    b"ENCRYPTED PRIVATE KEY",
    b"OPENSSH PRIVATE KEY",
}
_CERT_LABELS = {b"CERTIFICATE", b"X509 CERTIFICATE", b"TRUSTED CERTIFICATE"}
_PKCS7_LABELS = {b"PKCS7", b"CMS", b"PKCS #7 SIGNED DATA"}
_BASE64_ONLY = re.compile(rb"^[A-Za-z0-9+/=\s]+$")

_PKCS7_OTHER = "This PKCS#7 file is not a certificate bundle (it holds encrypted or signed data of another kind)."
# The object identifier of PKCS#7 SignedData, as it appears near the start of such a file.
_PKCS7_SIGNED_DATA_OID = bytes.fromhex("06092a864886f70d010702")

_KEY_MESSAGE = (
    "This file holds a private key, not a certificate. Upload the certificate (the public "
    "part) instead, and keep the private key secret."
)


def load_certificates(data: bytes, password: str | bytes | None = None, filename: str = "") -> list[x509.Certificate]:
    """Read every certificate in a PEM, DER, PKCS#7 or PKCS#12 file.

    Returns the certificates in file order without duplicates (for PKCS#12 the certificate
    that belongs to the key comes first). Private keys in the file are never returned.
    Raises ``CertificateLoadError`` with a one-line explanation for anything else.
    """
    if not data or not data.strip():
        raise CertificateLoadError("The file is empty.")
    if len(data) > MAX_FILE_BYTES:
        raise CertificateLoadError(
            f"The file is {len(data):,} bytes; certificate files larger than {MAX_FILE_BYTES:,} bytes are not accepted."
        )
    if b"-----BEGIN " in data:
        certs = _load_pem(data)
    elif _BASE64_ONLY.match(data.strip()):
        # A certificate pasted as bare base64, without the BEGIN/END lines.
        try:
            der = base64.b64decode(b"".join(data.split()), validate=True)
        except binascii.Error:
            raise CertificateLoadError("The text is not valid base64, so it cannot be a certificate.") from None
        certs = _load_der(der, password, filename)
    else:
        certs = _load_der(data, password, filename)
    certs = _unique(certs)
    if len(certs) > MAX_CERTIFICATES:
        raise CertificateLoadError(
            f"The file holds {len(certs)} certificates; at most {MAX_CERTIFICATES} are accepted."
        )
    for cert in certs:
        _check_parses(cert)
    return certs


def load_der(der: bytes) -> x509.Certificate:
    """One DER certificate (as a proxy or a TLS socket hands it over)."""
    if not der:
        raise CertificateLoadError("The certificate is empty.")
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise CertificateLoadError(f"It is not a DER certificate ({_short(exc)}).") from None
    _check_parses(cert)
    return cert


def load_one_certificate(data: bytes, password: str | bytes | None = None, filename: str = ""):
    """Like ``load_certificates`` but for a file that must hold a single certificate."""
    certs = load_certificates(data, password, filename)
    if len(certs) != 1:
        raise CertificateLoadError(f"The file holds {len(certs)} certificates; exactly one was expected.")
    return certs[0]


def _unique(certs):
    seen, out = set(), []
    for cert in certs:
        der = cert.public_bytes(serialization.Encoding.DER)
        if der not in seen:
            seen.add(der)
            out.append(cert)
    return out


def _load_pem(data: bytes) -> list[x509.Certificate]:
    certs: list[x509.Certificate] = []
    labels = []
    for match in _PEM_BLOCK.finditer(data):
        label, body = match.group(1), match.group(0)
        labels.append(label)
        if not body.rstrip().endswith(b"-----"):
            raise CertificateLoadError(f"The file is truncated: the {label.decode()} block has no END line.")
        if label == b"TRUSTED CERTIFICATE":
            certs.append(_load_trusted_certificate(match.group(2)))
        elif label in _CERT_LABELS:
            if label != b"CERTIFICATE":
                body = body.replace(label, b"CERTIFICATE")
            try:
                certs.append(x509.load_pem_x509_certificate(body))
            except ValueError as exc:
                raise CertificateLoadError(
                    f"A CERTIFICATE block in the file is damaged or truncated ({_short(exc)})."
                ) from None
        elif label in _PKCS7_LABELS:
            try:
                certs.extend(pkcs7.load_pem_pkcs7_certificates(body.replace(label, b"PKCS7")))
            except UnsupportedAlgorithm:
                raise CertificateLoadError(_PKCS7_OTHER) from None
            except ValueError as exc:
                raise CertificateLoadError(f"The PKCS#7 block in the file is damaged ({_short(exc)}).") from None
    if certs:
        return certs
    if any(label in _KEY_LABELS for label in labels):
        raise CertificateLoadError(_KEY_MESSAGE)
    if b"CERTIFICATE REQUEST" in labels or b"NEW CERTIFICATE REQUEST" in labels:
        raise CertificateLoadError(
            "This file is a certificate signing request (CSR), not a certificate. Have it "
            "signed by a CA and upload the certificate that comes back."
        )
    if b"PUBLIC KEY" in labels:
        raise CertificateLoadError("This file holds a bare public key, not a certificate.")
    if b"X509 CRL" in labels:
        raise CertificateLoadError("This file is a revocation list (CRL), not a certificate.")
    if labels:
        found = ", ".join(sorted({label.decode() for label in labels}))
        raise CertificateLoadError(f"The file holds no certificate (it holds: {found}).")
    raise CertificateLoadError("The file holds no certificate.")


def _load_trusted_certificate(body: bytes) -> x509.Certificate:
    """OpenSSL's TRUSTED CERTIFICATE: a DER certificate followed by its trust settings."""
    try:
        der = base64.b64decode(b"".join(body.split()), validate=True)
        length = der_length(der)
        if length is None or length > len(der):
            raise ValueError("truncated")
        return x509.load_der_x509_certificate(der[:length])
    except (ValueError, binascii.Error) as exc:
        raise CertificateLoadError(
            f"A TRUSTED CERTIFICATE block in the file is damaged or truncated ({_short(exc)})."
        ) from None


def _load_der(data: bytes, password, filename: str) -> list[x509.Certificate]:
    if data[:1] != b"\x30":
        raise CertificateLoadError(
            "The file is not a certificate: it is neither PEM text nor DER, PKCS#7 or PKCS#12 data."
        )
    declared = der_length(data)
    if declared is not None and declared > len(data):
        raise CertificateLoadError(f"The file is truncated: it declares {declared:,} bytes but holds {len(data):,}.")
    try:
        return [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        cert_error = exc
    if _is_empty_pkcs7(data):
        raise CertificateLoadError("The PKCS#7 file holds no certificates.")
    try:
        certs = pkcs7.load_der_pkcs7_certificates(data)
    except UnsupportedAlgorithm:
        raise CertificateLoadError(_PKCS7_OTHER) from None
    except ValueError:
        pass
    else:
        if not certs:
            raise CertificateLoadError("The PKCS#7 file holds no certificates.")
        return certs
    if _looks_like_pkcs12(data):
        return _load_pkcs12(data, password)
    if _is_private_key(data):
        raise CertificateLoadError(_KEY_MESSAGE)
    hint = ""
    if filename.lower().endswith((".pfx", ".p12")):
        hint = " It is not a readable PKCS#12 file either."
    raise CertificateLoadError(
        "The file could not be read as a certificate: it is damaged, truncated or in a format "
        f"the app does not read ({_short(cert_error)}).{hint}"
    )


def _load_pkcs12(data: bytes, password) -> list[x509.Certificate]:
    if isinstance(password, str):
        password = password.encode()
    try:
        opened = open_pfx(data, [password] if password else [None, b""])
    except WrongPassword:
        if password:
            raise CertificateLoadError(
                "The password does not open this PKCS#12 file (or the file is damaged)."
            ) from None
        raise CertificateLoadError("This PKCS#12 file is protected: give its password.") from None
    except PFXError as exc:
        raise CertificateLoadError(str(exc)) from None
    if not opened.certificates:
        raise CertificateLoadError("The PKCS#12 file holds a key but no certificate.")
    return opened.certificates


def der_length(data: bytes) -> int | None:
    """Total length (header included) that the outer DER element declares, if readable."""
    if len(data) < 2:
        return None
    first = data[1]
    if first < 0x80:
        return 2 + first
    count = first & 0x7F
    if count == 0 or count > 4 or len(data) < 2 + count:
        return None
    return 2 + count + int.from_bytes(data[2 : 2 + count], "big")


def _looks_like_pkcs12(data: bytes) -> bool:
    # PFX ::= SEQUENCE { version INTEGER (3), authSafe ContentInfo, macData ... }
    if len(data) < 2:
        return False
    header = 2 + (data[1] & 0x7F if data[1] & 0x80 else 0)
    return data[header : header + 3] == b"\x02\x01\x03"


def _is_empty_pkcs7(data: bytes) -> bool:
    """A SignedData PKCS#7 too small to hold any certificate."""
    return _PKCS7_SIGNED_DATA_OID in data[:24] and len(data) < 100


def _is_private_key(data: bytes) -> bool:
    try:
        serialization.load_der_private_key(data, None)
    except TypeError:
        return True  # an encrypted private key: still a key
    except (ValueError, UnsupportedAlgorithm):
        return False
    return True


def _check_parses(cert: x509.Certificate) -> None:
    """Touch every field we show later, so a malformed certificate fails here, not in a page."""
    try:
        cert.subject.rfc4514_string()
        cert.issuer.rfc4514_string()
        cert.not_valid_before_utc, cert.not_valid_after_utc  # noqa: B018
        cert.serial_number  # noqa: B018
        list(cert.extensions)
    except Exception as exc:  # the library raises several types for malformed fields
        raise CertificateLoadError(
            f"A certificate in the file is malformed and cannot be used ({_short(exc)})."
        ) from None


# What the certificate library's own messages mean, in words (its parser speaks Rust).
_LIBRARY_WORDS = (
    ("ShortData", "the data ends before the certificate does"),
    ("UnexpectedTag", "its structure is not that of a certificate"),
    ("InvalidLength", "a length inside it is wrong"),
    ("ExtraData", "there is data after the certificate"),
    ("Unable to load PEM file", "its base64 text is damaged"),
    ("ParseError", "its encoding is invalid"),
)


def _short(exc: Exception) -> str:
    """The library's reason as a short phrase a person can read."""
    text = str(exc).strip() or type(exc).__name__
    for marker, words in _LIBRARY_WORDS:
        if marker in text:
            return words
    text = text.split("\n")[0]
    if "{" in text:  # a debug dump, not a sentence
        return "its encoding is invalid"
    return text if len(text) <= 120 else text[:117] + "..."
