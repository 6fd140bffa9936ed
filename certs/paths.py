"""Path validation: does a certificate chain up to the trusted root store? Pure: no Django.

Signatures, validity, basic constraints and path length, key usage, name constraints and
critical extensions are checked by OpenSSL's RFC 5280 verifier, the same one the front proxy
runs, reached through pyOpenSSL. Only the client-authentication purpose is checked here,
because pyOpenSSL does not expose OpenSSL's purpose setting. Every refusal is explained in a
sentence that names the certificate where the path stopped.
"""

from __future__ import annotations

from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID
from OpenSSL import crypto as ossl

from .x509 import directly_issued_by, display_name, is_ca

# Deeper chains than this are not built; real client PKIs stay far below it.
MAX_PATH_LENGTH = 10


def _name(cert: x509.Certificate) -> str:
    return display_name(cert.subject)


class PathRefused(Exception):
    """The path does not validate; ``reason`` says why and ``depth`` where (0 = the certificate)."""

    def __init__(self, reason: str, depth: int | None = None):
        super().__init__(reason)
        self.reason = reason
        self.depth = depth


def validate_path(cert, chain, config, at: datetime) -> tuple[x509.Certificate, ...]:
    """The verified path from ``cert`` to an anchor in ``config.roots``, or ``PathRefused``."""
    if not config.roots:
        raise PathRefused("The trusted root store is empty, so no certificate can connect.")
    store = ossl.X509Store()
    for root in config._openssl_anchors:
        store.add_cert(root)
    if cert.public_bytes(serialization.Encoding.DER) in config._root_ders and not is_ca(cert):
        store.add_cert(ossl.X509.from_cryptography(cert))
    # set_time replaces the store's parameters, so it must come before set_flags.
    store.set_time(at)
    # Any installed certificate is an anchor, not only self-signed roots: the specification
    # lets an intermediate CA, or the client certificate itself, be installed and trusted.
    store.set_flags(ossl.X509StoreFlags.PARTIAL_CHAIN)
    offered = [ossl.X509.from_cryptography(c) for c in chain] + config._openssl_pool
    context = ossl.X509StoreContext(store, ossl.X509.from_cryptography(cert), offered)
    try:
        verified = context.get_verified_chain()
    except ossl.X509StoreContextError as exc:
        depth = exc.errors[1] if len(exc.errors) > 1 and isinstance(exc.errors[1], int) else None
        raise PathRefused(_explain_openssl(exc, cert, chain, config), depth) from None
    path = tuple(c.to_cryptography() for c in verified)
    if len(path) > MAX_PATH_LENGTH:
        raise PathRefused(f"The chain has {len(path)} certificates; at most {MAX_PATH_LENGTH}.")
    return path


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
        signer = next((c for c in known if c in config.roots and directly_issued_by(at_cert, c)), None)
        if signer is not None and not is_ca(signer):
            return (
                f"{subject} is signed by {issuer}, which is installed in the trusted root store but is not a CA "
                "(its basic constraints do not mark it as one): it is trusted for itself alone and vouches for "
                "no certificate it signs."
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
        return f"{subject} has a critical extension that the validator does not understand."
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
    if constraints is None or not constraints.ca:
        state = "has no basic constraints" if constraints is None else "is marked as not a CA"
        return f"{subject} signs other certificates but {state}, so it cannot act as a CA."
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
