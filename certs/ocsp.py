"""OCSP (RFC 6960): the request for one certificate, and the judgement of a responder's answer.
Pure: no Django, no database, no network (``ocsp_client`` fetches and caches).

An answer counts only when every check passes; otherwise the status is unknown, and the
reason says which check failed:

- the responder said "successful", and its signature (PKCS#1 v1.5, RSA-PSS with the parameters
  the answer states, ECDSA or EdDSA) verifies with the key of the certificate's
  issuer itself, or of a delegated responder certificate that the issuer signed (its key
  verifies the responder certificate's signature), that allows OCSP signing (extended key usage
  id-kp-OCSPSigning) and is valid now; the responder ID names the key that signed;
- the answer is about this certificate: the same serial number, issuer name hash and issuer key
  hash (the certificate ID);
- thisUpdate is not in the future (beyond a small allowance for clocks) and nextUpdate is not
  past: a stale answer proves nothing. An answer without nextUpdate counts only for a short
  while after its thisUpdate;
- a nonce, when the answer carries one, is the one sent (responders may leave it out).

A delegated responder's own revocation status (unless its certificate carries
id-pkix-ocsp-nocheck) is checked by the revocation engine, by CRL: ``Answer.delegate`` names it.

Signatures are verified by the ``cryptography`` library; nothing here is hand-made crypto.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from asn1crypto import ocsp as asn1_ocsp
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, SignatureAlgorithmOID

from .x509 import directly_issued_by, display_name, format_thumbprint, sha1_thumbprint

# How far a responder's clock may run ahead of ours.
CLOCK_SKEW = timedelta(minutes=5)
# How long an answer without nextUpdate counts after its thisUpdate.
NO_NEXT_UPDATE_LIFETIME = timedelta(minutes=5)
# Hashes a response may be signed with (MD5 and SHA-1 allow forged collisions).
SIGNATURE_HASHES = (hashes.SHA224, hashes.SHA256, hashes.SHA384, hashes.SHA512)
# Hashes a certificate ID may use (SHA-1 is the usual one there: no signature rests on it).
CERT_ID_HASHES = {
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}

GOOD = "good"
REVOKED = "revoked"
UNKNOWN = "unknown"

RESPONSE_STATUS_TEXT = {
    ocsp.OCSPResponseStatus.MALFORMED_REQUEST: "malformed request",
    ocsp.OCSPResponseStatus.INTERNAL_ERROR: "internal error",
    ocsp.OCSPResponseStatus.TRY_LATER: "try later",
    ocsp.OCSPResponseStatus.SIG_REQUIRED: "signature required",
    ocsp.OCSPResponseStatus.UNAUTHORIZED: "unauthorized",
}


def responder_urls(cert: x509.Certificate) -> list[str]:
    """The OCSP responders the certificate's authority information access names (http or https)."""
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except (x509.ExtensionNotFound, x509.DuplicateExtension, ValueError):
        return []
    urls = []
    for description in aia:
        if description.access_method != AuthorityInformationAccessOID.OCSP:
            continue
        location = description.access_location
        if isinstance(location, x509.UniformResourceIdentifier) and location.value.lower().startswith(
            ("http://", "https://")
        ):
            urls.append(location.value)
    return urls


def build_request(cert: x509.Certificate, issuer: x509.Certificate, nonce: bytes | None = None) -> bytes:
    """A DER OCSP request for ``cert`` (SHA-1 certificate ID, as responders expect), with a nonce."""
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1())  # noqa: S303 - an ID, not a signature
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def cert_id_key(cert: x509.Certificate, issuer: x509.Certificate) -> str:
    """The certificate ID as text (SHA-1 name hash, key hash, serial): how answers are cached."""
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()  # noqa: S303 - an ID
    return f"{request.issuer_name_hash.hex()}:{request.issuer_key_hash.hex()}:{format(cert.serial_number, 'x')}"


@dataclass(frozen=True)
class Answer:
    """What an OCSP answer says about one certificate, once judged.

    ``status`` is good, revoked or unknown; ``why`` says what the responder did, for a person
    ("the OCSP responder URL" + why); ``usable_until`` is when the answer stops counting (None
    when it never counted).
    """

    status: str
    why: str
    responder: str
    this_update: datetime | None = None
    next_update: datetime | None = None
    revoked_at: datetime | None = None
    reason: str = ""  # a ReasonFlags value, or ''
    usable_until: datetime | None = None
    # Whether the answer is worth keeping for others: a verified answer, still fresh.
    cacheable: bool = False
    # The delegated responder certificate whose key signed the answer (None: the issuer's own key).
    # Its own revocation status is the caller's to check (``needs_status_check``).
    delegate: x509.Certificate | None = None

    @property
    def source(self) -> str:
        fresh = ""
        if self.this_update is not None:
            until = f"next update {_when(self.next_update)}" if self.next_update else "no next update given"
            fresh = f" (this update {_when(self.this_update)}, {until})"
        return f"the OCSP responder {self.responder}{fresh}"

    def explain(self) -> str:
        """Why, in words: what the responder did (or why none was asked)."""
        return f"the OCSP responder {self.responder} {self.why}" if self.responder else self.why


def unknown(why: str, responder: str, **kwargs) -> Answer:
    return Answer(UNKNOWN, why, responder, **kwargs)


def judge(
    der: bytes,
    cert: x509.Certificate,
    issuer: x509.Certificate,
    at: datetime,
    responder: str,
    nonce: bytes | None = None,
) -> Answer:
    """Judge a DER OCSP response about ``cert`` (issued by ``issuer``) at the moment ``at``."""
    try:
        response = ocsp.load_der_ocsp_response(der)
    except ValueError:
        return unknown("sent something that is not an OCSP response", responder)
    try:
        return _judge(response, der, cert, issuer, at, responder, nonce)
    except (ValueError, TypeError, UnsupportedAlgorithm, x509.DuplicateExtension):
        # A part the library cannot read (a damaged or repeated extension, an unknown algorithm),
        # in the answer or in a responder certificate it sent.
        return unknown("sent an OCSP response the app cannot read in full", responder)


def _judge(response, der, cert, issuer, at, responder, nonce) -> Answer:
    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        text = RESPONSE_STATUS_TEXT.get(response.response_status, str(response.response_status))
        return unknown(f"answered '{text}' instead of a status", responder)
    problem, delegate = _signature_problem(response, issuer, at, der)
    if problem:
        return unknown(problem, responder)
    answer = _judge_verified(response, cert, issuer, at, responder, nonce)
    return replace(answer, delegate=delegate) if delegate is not None else answer


def _judge_verified(response, cert, issuer, at, responder, nonce) -> Answer:
    if nonce is not None:
        problem = _nonce_problem(response, nonce)
        if problem:
            return unknown(problem, responder)
    single = _single_for(response, cert, issuer)
    if single is None:
        return unknown("sent a signed answer about another certificate (the certificate ID differs)", responder)
    this_update, next_update = single.this_update_utc, single.next_update_utc
    times = {"this_update": this_update, "next_update": next_update}
    if this_update > at + CLOCK_SKEW:
        return unknown(f"sent an answer that is not valid yet (this update {_when(this_update)})", responder, **times)
    usable_until = next_update or this_update + NO_NEXT_UPDATE_LIFETIME
    if usable_until < at:
        if next_update is None:
            why = f"sent a stale answer: it gives no next update, and its this update {_when(this_update)} is too old"
        else:
            why = f"sent a stale answer: its next update was due {_when(next_update)}"
        return unknown(why, responder, **times)
    kept = {**times, "usable_until": usable_until, "cacheable": True}
    status = single.certificate_status
    if status == ocsp.OCSPCertStatus.GOOD:
        return Answer(GOOD, "answered good", responder, **kept)
    if status == ocsp.OCSPCertStatus.REVOKED:
        reason = single.revocation_reason.value if single.revocation_reason is not None else ""
        return Answer(
            REVOKED, "answered revoked", responder, revoked_at=single.revocation_time_utc, reason=reason, **kept
        )
    return unknown("does not know the certificate (it answered 'unknown')", responder, **kept)


def _single_for(response, cert: x509.Certificate, issuer: x509.Certificate):
    """The single response whose certificate ID is ``cert``'s, computed with its own hash."""
    for single in response.responses:
        if single.serial_number != cert.serial_number:
            continue
        algorithm = CERT_ID_HASHES.get(single.hash_algorithm.name)
        if algorithm is None:
            continue
        expected = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, algorithm()).build()
        if single.issuer_name_hash == expected.issuer_name_hash and single.issuer_key_hash == expected.issuer_key_hash:
            return single
    return None


def _nonce_problem(response, nonce: bytes) -> str | None:
    try:
        theirs = response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    except x509.ExtensionNotFound:
        return None
    if theirs != nonce:
        return "sent an answer carrying another request's nonce (a replayed or misdirected answer)"
    return None


def verifies(key, signature: bytes, data: bytes, algorithm, pss: padding.PSS | None = None) -> bool:
    """Whether ``key`` verifies ``signature`` over ``data`` (PKCS#1 v1.5, or RSA-PSS with the
    padding ``pss`` when the signature algorithm is RSASSA-PSS; ECDSA; EdDSA)."""
    if pss is not None and not isinstance(key, rsa.RSAPublicKey):
        return False  # an answer labelled RSA-PSS verifies with an RSA key or not at all
    try:
        if isinstance(key, rsa.RSAPublicKey):
            if algorithm is None:
                return False
            key.verify(signature, data, pss or padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            if algorithm is None:
                return False
            key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(signature, data)
        else:
            return False
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def _signature_problem(
    response, issuer: x509.Certificate, at: datetime, der: bytes
) -> tuple[str | None, x509.Certificate | None]:
    """(None, None) when the issuer signed the response, (None, the responder certificate) when a
    responder certificate it delegated to did; else (why not, None)."""
    pss = None
    if response.signature_algorithm_oid == SignatureAlgorithmOID.RSASSA_PSS:
        # The library names no hash for RSA-PSS here: it is read from the parameters.
        pss, algorithm, problem = _pss_padding(der)
        if problem:
            return problem, None
    else:
        try:
            algorithm = response.signature_hash_algorithm
        except UnsupportedAlgorithm:
            return "signed its answer with an algorithm the app does not accept", None
        if algorithm is not None and not isinstance(algorithm, SIGNATURE_HASHES):
            return f"signed its answer with {algorithm.name.upper()}, which is too weak to trust", None
    data, signature = response.tbs_response_bytes, response.signature
    if _names(response, issuer) and verifies(issuer.public_key(), signature, data, algorithm, pss):
        return None, None
    problems = []
    for candidate in response.certificates:
        if not _names(response, candidate):
            continue
        who = f"'{display_name(candidate.subject)}' ({format_thumbprint(sha1_thumbprint(candidate))})"
        if not verifies(candidate.public_key(), signature, data, algorithm, pss):
            problems.append(
                f"sent an answer that does not verify with the key of the responder certificate {who} it sent"
            )
            continue
        if not directly_issued_by(candidate, issuer):
            problems.append(
                f"sent an answer signed by the responder certificate {who}, which the certificate's issuer "
                f"'{display_name(issuer.subject)}' did not sign"
            )
            continue
        if not _signs_ocsp(candidate) or not _may_sign(candidate):
            problems.append(
                f"sent an answer signed by the responder certificate {who}, which is not allowed to sign OCSP "
                "answers (no id-kp-OCSPSigning extended key usage, or a key usage without digitalSignature)"
            )
            continue
        if not candidate.not_valid_before_utc <= at <= candidate.not_valid_after_utc:
            problems.append(f"sent an answer signed by the responder certificate {who}, which is not valid now")
            continue
        return None, candidate
    if problems:
        return problems[0], None
    return (
        f"sent an answer whose signature does not verify with the key of the certificate's issuer "
        f"'{display_name(issuer.subject)}' nor of a responder certificate that issuer signed (a forged or "
        "misdirected answer)"
    ), None


# --- RSA-PSS parameters ------------------------------------------------------------------------
# ``cryptography`` gives an OCSP response's signature algorithm but not its RSASSA-PSS parameters
# (the hash, the MGF1 hash and the salt length; RFC 4055 section 3.1), so ``asn1crypto`` reads
# them from the DER. The signature itself is verified by ``cryptography``'s PSS.

_HASHES = {
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
_PSS_UNREADABLE = "signed its answer with RSA-PSS parameters the app cannot read"
# Far above any real salt (the digest's length, at most 64 octets) and what the library accepts.
MAX_PSS_SALT = 65535


def _pss_padding(der: bytes):
    """(PSS padding, hash, None) as the response's RSASSA-PSS parameters state, or
    (None, None, why they cannot be used)."""
    try:
        params = _pss_params(der)
    except ValueError:  # the parameters cannot be read
        params = None
    if params is None:
        return None, None, _PSS_UNREADABLE
    digest, mgf_digest, salt = params
    for used in (digest, mgf_digest):
        if used is None:
            return None, None, "signed its answer with RSA-PSS and a hash the app does not accept"
        if used not in SIGNATURE_HASHES:
            return None, None, f"signed its answer with RSA-PSS and {used.name.upper()}, which is too weak to trust"
    if not 0 <= salt <= MAX_PSS_SALT:
        return None, None, _PSS_UNREADABLE
    return padding.PSS(mgf=padding.MGF1(mgf_digest()), salt_length=salt), digest(), None


def _pss_params(der: bytes):
    """(hash class, MGF1 hash class, salt length) from the BasicOCSPResponse's signatureAlgorithm
    (RFC 6960 section 4.2.1), with RFC 4055's defaults for what is left out; a hash the app does
    not know is None. ``ValueError`` when they cannot be read."""
    try:
        basic = asn1_ocsp.OCSPResponse.load(der, strict=True)["response_bytes"]["response"].parsed
        algorithm = basic["signature_algorithm"]
        if algorithm["algorithm"].native != "rsassa_pss":
            return None
        params = algorithm["parameters"]
        mgf = params["mask_gen_algorithm"]
        if mgf["algorithm"].native != "mgf1":
            raise ValueError("not MGF1")
        found = (
            _HASHES.get(params["hash_algorithm"]["algorithm"].native),
            _HASHES.get(mgf["parameters"]["algorithm"].native),
            params["salt_length"].native,
        )
        trailer = params["trailer_field"].native
    except Exception as exc:  # noqa: BLE001 - whatever the parser meets in a hostile answer
        raise ValueError(f"unreadable: {exc}") from None
    if trailer != "trailer_field_bc" or not isinstance(found[2], int):
        raise ValueError("bad trailer field or salt length")
    return found


def needs_status_check(delegate: x509.Certificate) -> bool:
    """Whether a delegated responder certificate's own revocation status must be checked: unless it
    carries id-pkix-ocsp-nocheck (RFC 6960 section 4.2.2.2.1). A damaged extension list counts as
    without it."""
    try:
        delegate.extensions.get_extension_for_class(x509.OCSPNoCheck)
    except (x509.ExtensionNotFound, ValueError):
        return True
    return False


def _names(response, cert: x509.Certificate) -> bool:
    """Whether the response's responder ID (by name or by key hash) names ``cert``."""
    if response.responder_name is not None:
        return response.responder_name == cert.subject
    key_hash = response.responder_key_hash
    try:
        return key_hash == x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return False


def _signs_ocsp(cert: x509.Certificate) -> bool:
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except (x509.ExtensionNotFound, ValueError):
        return False
    return ExtendedKeyUsageOID.OCSP_SIGNING in usages


def _may_sign(cert: x509.Certificate) -> bool:
    """A key whose key usage is limited must allow digitalSignature to sign answers."""
    try:
        return cert.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    except x509.ExtensionNotFound:
        return True
    except ValueError:
        return False


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "never"
