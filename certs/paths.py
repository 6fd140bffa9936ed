"""Path validation: does a certificate chain up to the trusted root store? Pure: no Django.

Signatures, validity, basic constraints and path length, key usage, name constraints and
critical extensions are checked by OpenSSL's RFC 5280 verifier, the same one the front proxy
runs, reached through pyOpenSSL. Only the client-authentication purpose is checked here,
because pyOpenSSL does not expose OpenSSL's purpose setting. Every refusal is explained in a
sentence that names the certificate where the path stopped.

OpenSSL takes the first issuer it is offered that matches by name and key identifier, and never
tries another: whether a certificate under a cross-signed or re-keyed CA connected would depend
on the order of the chain the client sent, and a CA of the same name offered first would hide
the right one. So paths are built here (``PathSearch``): the verifier runs once as before, with
everything offered, and when that path does not validate (or is refused afterwards), every other
candidate path is handed to it on its own, with exactly that path's certificates and its anchor.
Candidates are built only over links whose signature verifies, and are bounded in number and
depth (``MAX_CANDIDATE_PATHS``, ``MAX_ISSUER_CHECKS``, ``MAX_PATH_LENGTH``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID
from OpenSSL import crypto as ossl

from .x509 import directly_issued_by, display_name, is_ca

# Deeper chains than this (certificates on a path, the certificate and its anchor included)
# are not built; real client PKIs stay far below it.
MAX_PATH_LENGTH = 10
# At most this many candidate paths are handed to the verifier for one certificate, the
# path OpenSSL builds from everything offered included.
MAX_CANDIDATE_PATHS = 16
# At most this many (certificate, possible issuer) pairs are examined while building the
# candidates: a pool of many CAs of one name cannot make a decision slow.
MAX_ISSUER_CHECKS = 64


def _name(cert: x509.Certificate) -> str:
    return display_name(cert.subject)


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


class PathRefused(Exception):
    """The path does not validate; ``reason`` says why and ``depth`` where (0 = the certificate).

    ``path`` is the path the reason is about, from the certificate up, when one was built.
    """

    def __init__(self, reason: str, depth: int | None = None, path: tuple[x509.Certificate, ...] = ()):
        super().__init__(reason)
        self.reason = reason
        self.depth = depth
        self.path = path


# How useful a failure is to the person reading it, best last: a path that reached an anchor
# and failed there beats one that stopped for want of an issuer; then the deeper the better.
_DEAD_END = 0
_COMPLETE = 1


class PathSearch:
    """Every candidate path from ``cert`` to an anchor in ``config.roots``, verified one by one.

    ``paths()`` yields each path OpenSSL's verifier accepts, the one it builds from everything
    offered first (the common case: one path, one run of the verifier). The caller may refuse a
    verified path for its own reasons (usage, revocation) and ask for the next one, leaving out
    a certificate found revoked (``exclude``). When no path verifies, ``failure`` is the most
    useful refusal: of a path that reached an anchor, the deepest; else the path that got
    furthest before no issuer could be found.
    """

    def __init__(self, cert: x509.Certificate, chain, config, at: datetime):
        self.cert, self.chain, self.config, self.at = cert, tuple(chain), config, at
        self.tried = 0  # paths handed to the verifier
        self.checks = 0  # (certificate, issuer) pairs examined
        self._excluded: set[bytes] = set()
        self._failure: tuple[tuple[int, int], PathRefused] | None = None
        self._fallback: PathRefused | None = None
        self._signed: dict[tuple[int, int], tuple[x509.Certificate, x509.Certificate, bool]] = {}
        self._ders: dict[int, tuple[x509.Certificate, bytes]] = {}

    # --- what the caller sees ------------------------------------------------------------------

    @property
    def failure(self) -> PathRefused:
        if self._failure is not None:
            return self._failure[1]
        if self._fallback is not None:
            return self._fallback
        return PathRefused(  # pragma: no cover - the first run of the verifier always records one
            f"No path from '{_name(self.cert)}' to the trusted root store could be built."
        )

    def exclude(self, cert: x509.Certificate) -> None:
        """Leave ``cert`` out of every path still to be tried."""
        self._excluded.add(self._der_of(cert))

    def paths(self) -> Iterator[tuple[x509.Certificate, ...]]:
        config = self.config
        if not config.roots:
            self._fallback = PathRefused("The trusted root store is empty, so no certificate can connect.")
            return
        seen: set[tuple[bytes, ...]] = set()
        offered = [ossl.X509.from_cryptography(c) for c in self.chain] + config._openssl_pool
        first = self._verify(config._openssl_anchors, offered)
        if first is not None:
            yield first
            # Only when that path was refused afterwards (the common case stops at the yield).
            seen.add(tuple(self._der_of(c) for c in first))
        for candidate in self._candidates():
            key = tuple(self._der_of(c) for c in candidate)
            if key in seen or any(d in self._excluded for d in key):
                continue
            if self.tried >= MAX_CANDIDATE_PATHS:
                return
            seen.add(key)
            path = self._verify_candidate(candidate)
            if path is None:
                continue
            verified = tuple(self._der_of(c) for c in path)
            if verified != key and (verified in seen or any(d in self._excluded for d in verified)):
                continue
            seen.add(verified)
            yield path

    # --- running the verifier --------------------------------------------------------------------

    def _verify(self, anchors, offered, candidate=None) -> tuple[x509.Certificate, ...] | None:
        """One run of OpenSSL's verifier; the verified path, or None (the failure recorded)."""
        self.tried += 1
        cert = self.cert
        store = ossl.X509Store()
        for anchor in anchors:
            store.add_cert(anchor)
        if self._der_of(cert) in self.config._root_ders and not is_ca(cert):
            store.add_cert(ossl.X509.from_cryptography(cert))
        # set_time replaces the store's parameters, so it must come before set_flags.
        store.set_time(self.at)
        # Any installed certificate is an anchor, not only self-signed roots: the specification
        # lets an intermediate CA, or the client certificate itself, be installed and trusted.
        store.set_flags(ossl.X509StoreFlags.PARTIAL_CHAIN)
        context = ossl.X509StoreContext(store, ossl.X509.from_cryptography(cert), offered)
        try:
            verified = context.get_verified_chain()
        except ossl.X509StoreContextError as exc:
            depth = exc.errors[1] if len(exc.errors) > 1 and isinstance(exc.errors[1], int) else None
            refused = PathRefused(_explain_openssl(exc, cert, self.chain, self.config), depth, candidate or ())
            if candidate is None:
                self._fallback = refused
            else:
                self._record(_COMPLETE, depth, refused)
            return None
        path = tuple(c.to_cryptography() for c in verified)
        if len(path) > MAX_PATH_LENGTH:
            refused = PathRefused(f"The chain has {len(path)} certificates; at most {MAX_PATH_LENGTH}.", None, path)
            if candidate is None:
                self._fallback = refused
            else:
                self._record(_COMPLETE, 0, refused)
            return None
        return path

    def _verify_candidate(self, candidate) -> tuple[x509.Certificate, ...] | None:
        """The verifier with exactly this path's certificates, its top one the only anchor."""
        return self._verify([self._openssl(candidate[-1])], [self._openssl(c) for c in candidate[1:-1]], candidate)

    def _explain_dead_end(self, path) -> None:
        """Why a path stops before any anchor, in the verifier's words (it finds no issuer)."""
        if self._failure is not None and self._failure[0] >= (_DEAD_END, len(path) - 1):
            return  # a failure at least as useful is known: spare the verifier
        if len(path) >= MAX_PATH_LENGTH:
            refused = PathRefused(
                f"The chain is too long (more than {MAX_PATH_LENGTH} certificates).", len(path) - 1, path
            )
            self._record(_DEAD_END, len(path) - 1, refused)
            return
        store = ossl.X509Store()
        store.set_time(self.at)
        context = ossl.X509StoreContext(
            store, ossl.X509.from_cryptography(self.cert), [self._openssl(c) for c in path[1:]]
        )
        try:
            context.get_verified_chain()
        except ossl.X509StoreContextError as exc:
            depth = exc.errors[1] if len(exc.errors) > 1 and isinstance(exc.errors[1], int) else len(path) - 1
            self._record(
                _DEAD_END, depth, PathRefused(_explain_openssl(exc, self.cert, self.chain, self.config), depth, path)
            )

    def _record(self, kind: int, depth: int | None, refused: PathRefused) -> None:
        rank = (kind, depth if depth is not None else -1)
        if self._failure is None or rank > self._failure[0]:
            self._failure = (rank, refused)

    # --- building candidates -----------------------------------------------------------------------

    def _candidates(self) -> Iterator[tuple[x509.Certificate, ...]]:
        cert = self.cert
        if self._der_of(cert) in self.config._root_ders:
            yield (cert,)
        yield from self._extend((cert,), {(cert.subject, _key(cert))})

    def _extend(self, path, identities) -> Iterator[tuple[x509.Certificate, ...]]:
        current = path[-1]
        extended = False
        for issuer in self._issuers_of(current):
            if self.checks >= MAX_ISSUER_CHECKS:
                break
            identity = (issuer.subject, _key(issuer))
            # A CA appears once on a path, whatever copy of its certificate (no loops).
            if identity in identities or self._der_of(issuer) in self._excluded:
                continue
            if not self._signs(current, issuer):
                continue
            extended = True
            candidate = path + (issuer,)
            if self._der_of(issuer) in self.config._anchor_ders:
                yield candidate
            elif len(candidate) >= MAX_PATH_LENGTH:
                self._explain_dead_end(candidate)
            else:
                yield from self._extend(candidate, identities | {identity})
        if not extended:
            self._explain_dead_end(path)

    def _issuers_of(self, cert: x509.Certificate) -> list[x509.Certificate]:
        """Certificates named as ``cert``'s issuer: those whose key identifier is the one
        ``cert`` names first, then anchors, then the chain in the order sent, then the pool."""
        found = [c for c in self.chain if c.subject == cert.issuer]
        found += self.config._issuer_index.get(cert.issuer, [])
        wanted = _authority_key_id(cert)
        anchors = self.config._anchor_ders

        def order(c):
            matches = wanted is None or _subject_key_id(c) == wanted
            return (not matches, self._der_of(c) not in anchors)

        unique, seen = [], set()
        for c in found:
            d = self._der_of(c)
            if d not in seen:
                seen.add(d)
                unique.append(c)
        return sorted(unique, key=order)

    def _signs(self, cert, issuer) -> bool:
        # Keyed by identity, the objects kept with the answer so that no identity is reused.
        key = (id(cert), id(issuer))
        if key not in self._signed:
            self.checks += 1
            self._signed[key] = (cert, issuer, directly_issued_by(cert, issuer))
        return self._signed[key][2]

    def _der_of(self, cert: x509.Certificate) -> bytes:
        found = self.config._ders_by_id.get(id(cert))
        if found is not None:
            return found
        kept = self._ders.get(id(cert))
        if kept is None:
            kept = self._ders[id(cert)] = (cert, _der(cert))
        return kept[1]

    def _openssl(self, cert: x509.Certificate) -> ossl.X509:
        found = self.config._openssl_by_id.get(id(cert))
        return found if found is not None else ossl.X509.from_cryptography(cert)


def _key(cert: x509.Certificate) -> bytes:
    try:
        return cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    except Exception:  # a key the library cannot read: the certificate itself stands for it
        return _der(cert)


def _authority_key_id(cert: x509.Certificate) -> bytes | None:
    try:
        return cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    except (x509.ExtensionNotFound, ValueError):
        return None


def _subject_key_id(cert: x509.Certificate) -> bytes | None:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except (x509.ExtensionNotFound, ValueError):
        return None


def validate_path(cert, chain, config, at: datetime) -> tuple[x509.Certificate, ...]:
    """The first verified path from ``cert`` to an anchor in ``config.roots``, or ``PathRefused``."""
    search = PathSearch(cert, chain, config, at)
    for path in search.paths():
        return path
    raise search.failure


def client_auth_problem(path) -> tuple[str | None, int | None]:
    """RFC 5280 leaves usage to the application: this one is TLS client authentication.

    Returns the problem, if any, and the position on the path where it lies.

    Every certificate on the path that lists extended key usages must list clientAuth (or
    anyExtendedKeyUsage); a client certificate that limits its key usage must allow
    digital signatures or key agreement. This matches OpenSSL's "SSL client" purpose,
    which the front proxy applies.
    """
    for position, cert in enumerate(path):
        try:
            usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            pass
        else:
            allowed = {ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE}
            if not allowed.intersection(usages):
                role = "The certificate" if position == 0 else f"CA '{_name(cert)}'"
                listed = ", ".join(_eku_name(u) for u in usages) or "nothing"
                return (
                    f"{role} is not allowed for client authentication: its extended key usage lists only {listed}.",
                    position,
                )
    try:
        key_usage = path[0].extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None, None
    if not (key_usage.digital_signature or key_usage.key_agreement):
        return (
            "The certificate's key usage allows neither digital signatures nor key agreement, "
            "so it cannot be used to sign on.",
            0,
        )
    return None, None


def _eku_name(oid: x509.ObjectIdentifier) -> str:
    return getattr(oid, "_name", None) or oid.dotted_string


# OpenSSL's verify error codes (X509_V_ERR_*) that have a plainer explanation.
def _explain_openssl(exc: ossl.X509StoreContextError, leaf, chain, config) -> str:
    code, depth, message = (exc.errors + [0, 0, ""])[:3]
    try:
        at_cert = exc.certificate.to_cryptography()
    except Exception:  # pragma: no cover - pyOpenSSL always sets it; be safe anyway
        at_cert = leaf
    who = "The certificate" if depth == 0 else f"CA '{_name(at_cert)}'"
    subject = f"'{_name(at_cert)}'"
    issuer = f"'{display_name(at_cert.issuer)}'"
    if code in (2, 20, 21):  # unable to get (local) issuer, unable to verify leaf signature
        known = [c for c in (*chain, *config._everything) if c.subject == at_cert.issuer]
        # Bounded like the search: a chain of many namesakes costs no more to explain.
        signers = [c for c in known[:MAX_ISSUER_CHECKS] if directly_issued_by(at_cert, c)]
        installed = next((c for c in signers if c in config.roots and not is_ca(c)), None)
        if installed is not None:
            return (
                f"{subject} is signed by {issuer}, which is installed in the trusted root store but is not a CA "
                f"({_ca_state(installed)}): it is trusted for itself alone and vouches for no certificate it signs."
            )
        unusable = next(((c, why) for c in signers if (why := _unusable_issuer(c))), None)
        if unusable is not None:
            return f"{subject} is signed by {issuer}, but {issuer} cannot vouch for it: {unusable[1]}."
        if signers:
            return (
                f"{subject} is signed by {issuer}, which is neither installed in the trusted "
                "root store nor chains up to a certificate there."
            )
        if known:
            return (
                f"{subject} is signed by {issuer}, but no certificate named {issuer} that the "
                "app knows verifies its signature, so it does not chain up to the trusted "
                "root store."
            )
        return (
            f"{subject} is signed by {issuer}, which is neither installed in the trusted "
            "root store nor chains up to a certificate there."
        )
    if code in (18, 19) and at_cert in config.roots and not is_ca(at_cert) and depth > 0:
        return (
            f"The chain ends at {subject}, which is installed in the trusted root store but is not a CA "
            f"({_ca_state(at_cert)}): it is trusted for itself alone and vouches for no certificate it signs."
        )
    if code == 18:  # depth zero self-signed
        return "The certificate is self-signed and is not installed in the trusted root store."
    if code == 19:  # self-signed in chain
        return f"The chain ends at the self-signed CA {subject}, which is not installed in the trusted root store."
    if code in (4, 7):  # cannot decrypt / signature failure
        return f"The signature on {subject} does not verify with the key of its issuer {issuer}."
    if code == 6:
        return f"The public key of {issuer}, the issuer of {subject}, cannot be read."
    if code == 9:
        return f"{who} is not valid yet: it is valid from {_when(at_cert.not_valid_before_utc)}."
    if code == 10:
        return f"{who} expired on {_when(at_cert.not_valid_after_utc)}."
    if code in (13, 14, 15, 16):
        return f"{who} has a malformed validity date."
    if code in (24, 32, 79):  # invalid CA, key usage without keyCertSign
        return _why_not_a_ca(at_cert)
    if code == 25:
        return f"The chain is longer than the path length constraint of {subject} allows."
    if code == 34:
        return _critical_extension_problem(at_cert)
    if code in (47, 48, 49, 51, 53):
        return f"{subject} has a name outside the name constraints of a CA above it ({message})."
    if code == 22:
        return f"The chain is too long (more than {MAX_PATH_LENGTH} certificates)."
    if code == 1 and any(_has_name_constraints(c) for c in (*chain, *config._everything)):
        # OpenSSL gives up, without a reason of its own, when names times constraints exceed
        # what it is willing to compare.
        return (
            f"{subject} carries more names than can be checked against the name constraints of a CA above it, "
            "so it is refused."
        )
    return f"The chain could not be verified at {subject}: {message}."


def _ca_state(cert: x509.Certificate) -> str:
    """Why a certificate is not a CA, in words."""
    try:
        cert.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        return "it has no basic constraints extension, and only one with CA:TRUE makes a certificate a CA"
    return "its basic constraints extension says CA:FALSE"


# Extensions RFC 5280 says a conforming CA must mark non-critical (4.2.1.1, 4.2.1.2).
_MUST_NOT_BE_CRITICAL = {
    ExtensionOID.SUBJECT_KEY_IDENTIFIER: "subject key identifier",
    ExtensionOID.AUTHORITY_KEY_IDENTIFIER: "authority key identifier",
}


def _critical_extension_problem(cert: x509.Certificate) -> str:
    subject = f"'{_name(cert)}'"
    for ext in cert.extensions:
        if ext.critical and ext.oid in _MUST_NOT_BE_CRITICAL:
            return (
                f"{subject} marks its {_MUST_NOT_BE_CRITICAL[ext.oid]} extension critical, which RFC 5280 "
                "forbids (it must be non-critical), so the certificate is refused."
            )
    unknown = [
        ext.oid.dotted_string
        for ext in cert.extensions
        if ext.critical and isinstance(ext.value, x509.UnrecognizedExtension)
    ]
    if unknown:
        return (
            f"{subject} has a critical extension that the validator does not understand ({', '.join(unknown)}), "
            "so the certificate is refused."
        )
    return f"{subject} has a critical extension that the validator does not understand."


def _unusable_issuer(cert: x509.Certificate) -> str | None:
    """Why a certificate whose key verifies a signature still cannot issue, if it cannot."""
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return "it has no basic constraints extension, so it is not a CA"
    if not constraints.ca:
        return "its basic constraints extension says CA:FALSE, so it is not a CA"
    for ext in cert.extensions:
        if ext.critical and ext.oid in _MUST_NOT_BE_CRITICAL:
            return f"it marks its {_MUST_NOT_BE_CRITICAL[ext.oid]} extension critical, which RFC 5280 forbids"
    return None


def _has_name_constraints(cert: x509.Certificate) -> bool:
    try:
        cert.extensions.get_extension_for_class(x509.NameConstraints)
    except x509.ExtensionNotFound:
        return False
    return True


def _why_not_a_ca(cert: x509.Certificate) -> str:
    """OpenSSL reports one code for several CA problems; name the one this certificate has."""
    subject = f"'{_name(cert)}'"
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None:
        return (
            f"{subject} signs other certificates but has no basic constraints extension, so it cannot act as a CA "
            "(only a certificate whose basic constraints say CA:TRUE can)."
        )
    if not constraints.ca:
        return f"{subject} signs other certificates but is marked as not a CA (basic constraints CA:FALSE)."
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is not None and not usage.key_cert_sign:
        return f"{subject} signs other certificates but its key usage does not allow certificate signing."
    return f"{subject} cannot act as a CA for this chain."


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def follow_issuers(cert, chain, config) -> tuple[x509.Certificate, ...]:
    """The chain as far as it can be followed by name and signature, for display only."""
    pool = [*chain, *config._everything]
    path = [cert]
    current = cert
    while len(path) < MAX_PATH_LENGTH and not (
        current.subject == current.issuer and directly_issued_by(current, current)
    ):
        issuer = next((c for c in pool if directly_issued_by(current, c) and c not in path), None)
        if issuer is None:
            break
        path.append(issuer)
        current = issuer
    return tuple(path)
