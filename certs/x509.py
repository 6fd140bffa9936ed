"""Describing certificates: thumbprints, names, relationships, extensions. Pure: no Django.

Everything here takes bytes or ``cryptography`` objects and returns plain values, so it
can be used by pages, commands and sign-on alike and tested in milliseconds.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# CNs longer than this (X.509 allows 64 characters) or with control characters never match.
MAX_CN_LENGTH = 256

__all__ = [
    "ThumbprintError",
    "CNError",
    "MAX_CN_LENGTH",
    "clean_cn",
    "cn_text_problem",
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
    "looks_like_an_end_entity",
    "Summary",
    "summarize",
    "describe_extensions",
]


class ThumbprintError(ValueError):
    """A thumbprint was written in a way that cannot be read; the message says why."""


class CNError(ValueError):
    """A CN that no rule could ever match; the message says why."""


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


def cn_text_problem(cn: str) -> str | None:
    """Why a CN can never be matched by a CN rule, as a phrase ("is blank"), or None.

    One rule for both sides: a CN typed by an administrator is refused for the same reasons
    that a certificate's CN never matches.
    """
    if not name_key(cn):
        return "is blank"
    if len(cn) > MAX_CN_LENGTH:
        return f"is longer than {MAX_CN_LENGTH} characters"
    if printable(cn) != cn:
        return "holds control or invisible characters"
    return None


def clean_cn(text: str) -> str:
    """A CN as typed, with surrounding white space removed and inner runs reduced to one space.

    Raises ``CNError`` with a sentence for a CN that no certificate could ever match.
    """
    cn = " ".join((text or "").split())
    if not cn:
        raise CNError("Enter a CN.")
    if len(cn) > MAX_CN_LENGTH:
        raise CNError(f"A CN has at most {MAX_CN_LENGTH} characters; this one has {len(cn)}.")
    if cn_text_problem(cn):
        raise CNError("A CN cannot contain control characters or invisible characters (such as a zero-width space).")
    return cn


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


def looks_like_an_end_entity(cert: x509.Certificate) -> bool:
    """A CA certificate (CA:TRUE) that says nothing of signing certificates, or is meant for TLS
    clients or servers: what ``openssl req -x509`` makes by default for anyone's own use."""
    if not is_ca(cert):
        return False
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return True
    if not usage.key_cert_sign:
        return False  # a CA whose key may not sign certificates vouches for nothing it signs anyway
    try:
        purposes = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return ExtendedKeyUsageOID.CLIENT_AUTH in purposes or ExtendedKeyUsageOID.SERVER_AUTH in purposes


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


def public_key_sha256(cert: x509.Certificate) -> str:
    """SHA-256 of the certificate's subject public key info, in hexadecimal (upper case): the
    same for every certificate made for one key. Empty for a key the library cannot read."""
    try:
        return key_sha256(cert.public_key())
    except (ValueError, UnsupportedAlgorithm):
        return ""


def key_sha256(public_key) -> str:
    """SHA-256 of a public key's subject public key info, in hexadecimal (upper case)."""
    spki = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest().upper()
