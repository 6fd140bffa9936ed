"""Reading certificates and describing them. Pure: no Django, no database.

Everything here takes bytes or ``cryptography`` objects and returns plain values, so it
can be used by pages, commands and sign-on alike and tested in milliseconds.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from cryptography.x509.oid import NameOID

# A certificate bundle bigger than this is not something an administrator uploads on purpose.
MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_CERTIFICATES = 1000

__all__ = [
    "CertificateLoadError",
    "ThumbprintError",
    "load_certificates",
    "load_one_certificate",
    "load_der",
    "der_length",
    "sha1_thumbprint",
    "sha256_fingerprint",
    "format_thumbprint",
    "format_fingerprint",
    "parse_thumbprint",
    "common_names",
    "single_common_name",
    "display_name",
    "printable",
    "name_key",
    "directly_issued_by",
    "is_self_signed",
    "is_ca",
    "Summary",
    "summarize",
    "describe_extensions",
]


class CertificateLoadError(ValueError):
    """A file could not be read as certificates; the message is one sentence for a person."""


class ThumbprintError(ValueError):
    """A thumbprint was written in a way that cannot be read; the message says why."""


# --- loading ---------------------------------------------------------------------------------

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
    attempts = [password] if password else [None, b""]
    for attempt in attempts:
        try:
            loaded = pkcs12.load_pkcs12(data, attempt)
        except ValueError:
            continue
        except UnsupportedAlgorithm as exc:
            raise CertificateLoadError(
                f"The PKCS#12 file uses an encryption the app does not support ({_short(exc)})."
            ) from None
        certs = []
        if loaded.cert is not None:
            certs.append(loaded.cert.certificate)
        certs.extend(c.certificate for c in loaded.additional_certs)
        if not certs:
            raise CertificateLoadError("The PKCS#12 file holds a key but no certificate.")
        return certs
    if password:
        raise CertificateLoadError("The password does not open this PKCS#12 file (or the file is damaged).")
    raise CertificateLoadError("This PKCS#12 file is protected: give its password.")


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


def _short(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    text = text.split("\n")[0]
    return text if len(text) <= 120 else text[:117] + "..."


# --- thumbprints -----------------------------------------------------------------------------

_THUMBPRINT_NOISE = re.compile(r"[\s:\-]")
_SHA1_PREFIX = re.compile(r"^sha-?1\s*[:=]\s*", re.I)
_INVISIBLE = dict.fromkeys(map(ord, "\u200e\u200f\u200b\ufeff\u00a0"), None)


def sha1_thumbprint(cert: x509.Certificate) -> str:
    """The thumbprint: SHA-1 over the DER encoding, 40 upper-case hex digits."""
    return hashlib.sha1(cert.public_bytes(serialization.Encoding.DER)).hexdigest().upper()


def sha256_fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 over the DER encoding, 64 upper-case hex digits."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest().upper()


def format_thumbprint(hexdigits: str) -> str:
    """Show a thumbprint as the specification does: '3D17 CFF3 E27B ...'."""
    hexdigits = hexdigits.upper()
    return " ".join(hexdigits[i : i + 4] for i in range(0, len(hexdigits), 4))


def format_fingerprint(hexdigits: str) -> str:
    """Show a SHA-256 fingerprint as colon-separated byte pairs, the way OpenSSL prints it."""
    hexdigits = hexdigits.upper()
    return ":".join(hexdigits[i : i + 2] for i in range(0, len(hexdigits), 2))


def parse_thumbprint(text: str) -> str:
    """Read a SHA-1 thumbprint written in any common notation; return 40 upper-case hex digits.

    Accepts spaces, colons and hyphens between digits, either case, an optional ``sha1:``
    prefix, and the invisible marks that Windows' certificate dialog copies along.
    """
    cleaned = (text or "").translate(_INVISIBLE).strip()
    cleaned = _SHA1_PREFIX.sub("", cleaned)
    digits = _THUMBPRINT_NOISE.sub("", cleaned)
    if not digits:
        raise ThumbprintError("Enter a thumbprint: 40 hexadecimal digits.")
    bad = sorted({c for c in digits if c not in "0123456789abcdefABCDEF"})
    if bad:
        shown = ", ".join(repr(c) for c in bad[:5])
        raise ThumbprintError(f"A thumbprint holds only the hexadecimal digits 0-9 and A-F; found {shown}.")
    if len(digits) == 64:
        raise ThumbprintError(
            "That is a SHA-256 fingerprint (64 digits); enter the SHA-1 thumbprint (40 digits) instead."
        )
    if len(digits) != 40:
        raise ThumbprintError(f"A thumbprint has 40 hexadecimal digits; this one has {len(digits)}.")
    return digits.upper()


# --- names -----------------------------------------------------------------------------------


def common_names(name: x509.Name) -> list[str]:
    """Every CN attribute value in a name, in order."""
    return [str(attr.value) for attr in name.get_attributes_for_oid(NameOID.COMMON_NAME)]


def single_common_name(cert: x509.Certificate) -> str | None:
    """The subject's CN, or None when it has no CN or several (then CN rules never apply)."""
    names = common_names(cert.subject)
    return names[0] if len(names) == 1 else None


def printable(text: str) -> str:
    """Text safe to show on a page, in a terminal or in a file: control characters escaped."""
    return "".join(c if c.isprintable() or c == " " else f"\\x{ord(c):02x}" for c in text)


def display_name(name: x509.Name) -> str:
    """A short name for a person: the CN when there is exactly one, else the whole DN."""
    names = common_names(name)
    if len(names) == 1 and names[0].strip():
        return printable(names[0])
    return printable(name.rfc4514_string()) or "(empty name)"


_SPACES = re.compile(r"\s+")


def name_key(text: str) -> str:
    """The form in which CNs, usernames and full names are compared.

    Unicode NFKC (as Django normalises usernames), case folded, surrounding white space
    removed and inner runs of white space reduced to one space: "  Chug   AND ring " and
    "chug and Ring" are the same name, and so are "Straße" and "STRASSE". The same key
    enforces username uniqueness, so a CN is the username of one user at most.
    """
    text = unicodedata.normalize("NFKC", text or "")
    return _SPACES.sub(" ", text).strip().casefold()


# --- relationships ---------------------------------------------------------------------------


def directly_issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """True when ``issuer``'s subject is ``cert``'s issuer and its key verifies the signature."""
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def is_self_signed(cert: x509.Certificate) -> bool:
    return cert.subject == cert.issuer and directly_issued_by(cert, cert)


def is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


# --- description -----------------------------------------------------------------------------

_KEY_USAGE_FLAGS = [
    ("digital_signature", "Digital signature"),
    ("content_commitment", "Non-repudiation"),
    ("key_encipherment", "Key encipherment"),
    ("data_encipherment", "Data encipherment"),
    ("key_agreement", "Key agreement"),
    ("key_cert_sign", "Certificate signing"),
    ("crl_sign", "CRL signing"),
]


def describe_extensions(cert: x509.Certificate) -> list[tuple[str, bool, str]]:
    """Each extension as (name, critical, value in words), for an inspection page."""
    described = []
    for extension in cert.extensions:
        value = extension.value
        name = getattr(extension.oid, "_name", None) or extension.oid.dotted_string
        if isinstance(value, x509.BasicConstraints):
            text = "CA" if value.ca else "Not a CA"
            if value.ca and value.path_length is not None:
                text += f", path length at most {value.path_length}"
        elif isinstance(value, x509.KeyUsage):
            text = ", ".join(label for attr, label in _KEY_USAGE_FLAGS if getattr(value, attr)) or "none"
        elif isinstance(value, x509.ExtendedKeyUsage):
            text = ", ".join(getattr(oid, "_name", None) or oid.dotted_string for oid in value)
        elif isinstance(value, x509.SubjectAlternativeName):
            text = ", ".join(str(getattr(general, "value", general)) for general in value)
        elif isinstance(value, x509.SubjectKeyIdentifier):
            text = value.digest.hex(":").upper()
        elif isinstance(value, x509.AuthorityKeyIdentifier):
            text = value.key_identifier.hex(":").upper() if value.key_identifier else "(issuer and serial)"
        elif isinstance(value, x509.NameConstraints):
            parts = []
            for label, trees in (("permitted", value.permitted_subtrees), ("excluded", value.excluded_subtrees)):
                if trees:
                    parts.append(f"{label}: " + ", ".join(str(getattr(t, "value", t)) for t in trees))
            text = "; ".join(parts)
        elif isinstance(value, x509.UnrecognizedExtension):
            text = f"{len(value.value)} bytes the app does not interpret"
        else:
            text = str(value)
            text = text if len(text) <= 300 else text[:297] + "..."
        described.append((name, extension.critical, text))
    return described


@dataclass(frozen=True)
class Summary:
    """What pages, commands and the database show about a certificate."""

    subject: str
    issuer: str
    common_name: str | None
    subject_display: str
    issuer_display: str
    serial: str
    not_before: datetime
    not_after: datetime
    sha1: str
    sha256: str
    is_ca: bool
    self_signed: bool


def summarize(cert: x509.Certificate) -> Summary:
    common_name = single_common_name(cert)
    return Summary(
        subject=printable(cert.subject.rfc4514_string()),
        issuer=printable(cert.issuer.rfc4514_string()),
        common_name=printable(common_name) if common_name is not None else None,
        subject_display=display_name(cert.subject),
        issuer_display=display_name(cert.issuer),
        serial=format(cert.serial_number, "X"),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        sha1=sha1_thumbprint(cert),
        sha256=sha256_fingerprint(cert),
        is_ca=is_ca(cert),
        self_signed=is_self_signed(cert),
    )
