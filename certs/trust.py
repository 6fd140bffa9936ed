"""The trust engine: does a certificate connect, and whom does it authenticate?

Pure: no Django, no database. The rules read like the specification ("TLS (SSL) - Client
Certs - Overview"): two CA conditions decide whether a certificate *connects*, three
credential conditions decide whether it *authenticates* a user, and every condition that
fails says why in a sentence.

Path validation itself (RFC 5280, by OpenSSL's verifier) is in ``paths``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from OpenSSL import crypto as ossl

from . import revocation as rev
from .paths import PathRefused, client_auth_problem, follow_issuers, validate_path
from .x509 import (
    MAX_CN_LENGTH,
    cn_text_problem,
    common_names,
    directly_issued_by,
    display_name,
    format_thumbprint,
    is_ca,
    name_key,
    printable,
    sha1_thumbprint,
)

CANNOT_CONNECT = "cannot_connect"
CONNECTS_ONLY = "connects_only"
AUTHENTICATES = "authenticates"

CATEGORY_TEXT = {
    CANNOT_CONNECT: "Cannot connect",
    CONNECTS_ONLY: "Can connect but not authenticate",
    AUTHENTICATES: "Can connect and authenticate",
}

RULE_THUMBPRINT = "thumbprint"
RULE_CN = "cn"
RULE_MATCH_CN = "match_cn"

# The rule that signed someone on, told to them ("You signed on with your client certificate: ...").
RULE_FOR_THE_USER = {
    RULE_THUMBPRINT: "its thumbprint is on your profile",
    RULE_CN: "its CN is on your profile, and its CA is approved",
    RULE_MATCH_CN: "its CN is your username or full name, and its CA is approved",
}

RULE_TEXT = {
    RULE_THUMBPRINT: "Thumbprint assigned to the user's profile",
    RULE_CN: "CN assigned to the user's profile, signed by an approved CA",
    RULE_MATCH_CN: "CN matches the username or full name, signed by an approved CA",
}


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _name(cert: x509.Certificate) -> str:
    return display_name(cert.subject)


@dataclass(frozen=True)
class TrustConfig:
    """The org-level configuration the rules read.

    ``roots`` are installed in the trusted root store, ``intermediates`` are known CA
    certificates used to build chains without being trusted, ``approved`` is the approved-CA
    list ("Trusted CAs" in the specification), ``match_cn`` the Match Cert CN to
    Username/Full Name option.
    """

    roots: tuple[x509.Certificate, ...] = ()
    intermediates: tuple[x509.Certificate, ...] = ()
    approved: tuple[x509.Certificate, ...] = ()
    match_cn: bool = False
    # Revocation policies and the CRLs in force (by default nothing is checked).
    revocation: rev.RevocationConfig = rev.RevocationConfig()

    @cached_property
    def _root_ders(self) -> frozenset[bytes]:
        return frozenset(_der(c) for c in self.roots)

    @cached_property
    def _openssl_anchors(self) -> list[ossl.X509]:
        # Only CA certificates anchor chains. Any other installed certificate (a client
        # certificate, or a v1 certificate without basic constraints) trusts itself alone,
        # so it is added to the store only when it is the certificate presented.
        return [ossl.X509.from_cryptography(c) for c in self.roots if is_ca(c)]

    @cached_property
    def _openssl_pool(self) -> list[ossl.X509]:
        return [ossl.X509.from_cryptography(c) for c in self.intermediates + self.approved]

    @cached_property
    def _everything(self) -> tuple[x509.Certificate, ...]:
        return self.roots + self.intermediates + self.approved


# --- connect: the two CA conditions ----------------------------------------------------------


@dataclass(frozen=True)
class Connection:
    """Whether a certificate connects, and why.

    ``path`` runs from the certificate up to the trust anchor when it connects; when it
    does not, it holds as much of the chain as could be followed, for display.
    """

    ok: bool
    reason: str
    path: tuple[x509.Certificate, ...]
    anchor: x509.Certificate | None = None
    # When it does not connect: the position (0 = the certificate itself) where the path stopped.
    failed_depth: int | None = None
    # The revocation status of each certificate on a validated path (empty when none was built).
    revocation: tuple[rev.Status, ...] = ()


def installed_in_root_store(cert: x509.Certificate, config: TrustConfig) -> bool:
    """CA condition 1: the client certificate itself is installed in the trusted root store."""
    return _der(cert) in config._root_ders


def connect(
    cert: x509.Certificate,
    chain: list[x509.Certificate] | tuple[x509.Certificate, ...],
    config: TrustConfig,
    at: datetime,
) -> Connection:
    """Decide whether ``cert`` connects at time ``at``.

    Either CA condition of the specification lets it connect: the certificate is itself
    installed in the trusted root store (condition 1), or it is signed by a CA that chains
    up to a certificate installed there (condition 2). Both are checked cryptographically
    by one RFC 5280 path validation, with any certificate in the store acting as an anchor;
    ``chain`` (what the client sent), the intermediate pool and the approved-CA list are
    offered for building the path but are never trusted by themselves.
    """
    try:
        path = validate_path(cert, chain, config, at)
    except PathRefused as refused:
        return Connection(False, refused.reason, follow_issuers(cert, chain, config), failed_depth=refused.depth)
    problem, depth = client_auth_problem(path)
    if problem:
        return Connection(False, problem, path, failed_depth=depth)
    statuses = rev.check_path(path, config.revocation, at)
    refusal = next((i for i, s in enumerate(statuses) if s.refuses), None)
    if refusal is not None:
        reason = _sentence(statuses[refusal].reason)
        return Connection(False, reason, path, failed_depth=refusal, revocation=statuses)
    anchor = path[-1]
    if len(path) == 1:
        reason = f"'{_name(cert)}' is itself installed in the trusted root store."
    else:
        via = " via " + ", ".join(f"'{_name(c)}'" for c in path[1:-1]) if len(path) > 2 else ""
        reason = f"'{_name(cert)}' chains up{via} to '{_name(anchor)}', which is installed in the trusted root store."
    return Connection(True, reason, path, anchor, revocation=statuses)


def chains_to_root_store(cert: x509.Certificate, config: TrustConfig, at: datetime, chain=()) -> Connection:
    """Whether a CA certificate is installed or chains up to the root store (usage not checked).

    For showing whether an approved CA's certificates can connect at all: an approved CA
    that is not installed and does not chain up ("Verisign" in the specification) approves
    certificates that still cannot connect.
    """
    try:
        path = validate_path(cert, chain, config, at)
    except PathRefused as refused:
        return Connection(False, refused.reason, follow_issuers(cert, chain, config))
    return Connection(True, "", path, path[-1])


# --- authenticate: the three credential conditions -------------------------------------------


@dataclass(frozen=True)
class Profile:
    """What the rules need to know of one user.

    ``thumbprints`` are SHA-1 thumbprints (40 upper-case hex digits) and ``cns`` the
    ``name_key`` of each CN assigned to the profile. Callers may pass only the entries that
    could concern the certificate at hand.
    """

    username: str
    full_name: str = ""
    is_active: bool = True
    thumbprints: frozenset[str] = field(default_factory=frozenset)
    cns: frozenset[str] = field(default_factory=frozenset)
    # Other users whose username or full name is the same name as this user's (as the
    # certificate at hand's CN): such a name identifies nobody by the Match Cert CN rule.
    namesakes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Check:
    """One condition: whether it held, and the sentence that says so."""

    held: bool
    reason: str


@dataclass(frozen=True)
class Approval:
    """Whether the certificate's issuing CA is on the approved-CA list."""

    ca: x509.Certificate | None
    reason: str

    @property
    def approved(self) -> bool:
        return self.ca is not None


def issuing_ca_approval(cert: x509.Certificate, path: tuple[x509.Certificate, ...], approved) -> Approval:
    """The approved CA that issued ``cert``, if there is one.

    A CA is the issuer only if its subject is the certificate's issuer *and its key
    verifies the certificate's signature*: a CA that merely carries the same name is not
    approved. When the certificate connects, the issuer found by path validation counts
    too if an approved certificate has its subject and key (the same CA, possibly a
    re-issued or cross-signed copy of its certificate).
    """
    issuer_name = display_name(cert.issuer)
    issuer_on_path = path[1] if len(path) > 1 else None
    for ca in approved:
        if issuer_on_path is not None and _same_ca(ca, issuer_on_path):
            return Approval(ca, f"issuer '{issuer_name}' is an approved CA")
        if directly_issued_by(cert, ca):
            return Approval(ca, f"issuer '{issuer_name}' is an approved CA")
    if any(ca.subject == cert.issuer for ca in approved):
        return Approval(
            None,
            f"issuer '{issuer_name}' is not an approved CA: an approved CA has that name, but "
            "its key did not sign this certificate (a different CA using the same name)",
        )
    return Approval(None, f"issuer '{issuer_name}' is not on the approved CA list")


def _same_ca(a: x509.Certificate, b: x509.Certificate) -> bool:
    return _der(a) == _der(b) or (a.subject == b.subject and a.public_key() == b.public_key())


def cn_problem(cert: x509.Certificate) -> str | None:
    names = common_names(cert.subject)
    if not names:
        return "the certificate has no CN, so CN rules do not apply"
    if len(names) > 1:
        shown = ", ".join(f"'{printable(n)}'" for n in names)
        return f"the certificate has several CNs ({shown}), so CN rules do not apply"
    problem = cn_text_problem(names[0])
    if problem is None:
        return None
    shown = "" if problem == "is blank" or len(names[0]) > MAX_CN_LENGTH else f" '{printable(names[0])}'"
    return f"the certificate's CN{shown} {problem}, so CN rules do not apply"


def thumbprint_on_profile(cert: x509.Certificate, profile: Profile) -> Check:
    """Credential condition 1: the certificate's thumbprint is assigned to the user's profile."""
    shown = format_thumbprint(sha1_thumbprint(cert))
    if sha1_thumbprint(cert) in profile.thumbprints:
        return Check(True, f"thumbprint {shown} is on {profile.username}'s profile")
    return Check(False, f"thumbprint {shown} is not on {profile.username}'s profile")


def cn_on_profile_and_ca_approved(cert: x509.Certificate, profile: Profile, approval: Approval) -> Check:
    """Credential condition 2: the CN is assigned to the profile AND the issuing CA is approved."""
    problem = cn_problem(cert)
    if problem:
        return Check(False, problem)
    cn = common_names(cert.subject)[0]
    if name_key(cn) not in profile.cns:
        return Check(False, f"CN '{cn}' is not on {profile.username}'s profile")
    if not approval.approved:
        return Check(False, f"CN '{cn}' is on {profile.username}'s profile, but {approval.reason}")
    return Check(True, f"CN '{cn}' is on {profile.username}'s profile and {approval.reason}")


def cn_matches_user_and_ca_approved(
    cert: x509.Certificate, profile: Profile, match_cn: bool, approval: Approval
) -> Check:
    """Credential condition 3: the CN is the username or full name, the org-level Match Cert
    CN to Username/Full Name option is on, AND the issuing CA is approved."""
    if not match_cn:
        return Check(False, "the Match Cert CN to Username/Full Name option is off")
    problem = cn_problem(cert)
    if problem:
        return Check(False, problem)
    cn = common_names(cert.subject)[0]
    if name_key(cn) == name_key(profile.username):
        matched = "username"
    elif profile.full_name and name_key(cn) == name_key(profile.full_name):
        matched = "full name"
    else:
        return Check(False, f"CN '{cn}' is neither the username nor the full name of {profile.username}")
    if profile.namesakes:
        others = ", ".join(profile.namesakes)
        return Check(
            False,
            f"CN '{cn}' is {profile.username}'s {matched}, but also the username or full name of {others}, "
            "so it identifies nobody by this rule",
        )
    if not approval.approved:
        return Check(False, f"CN '{cn}' is {profile.username}'s {matched}, but {approval.reason}")
    return Check(True, f"CN '{cn}' is {profile.username}'s {matched} and {approval.reason}")


@dataclass(frozen=True)
class UserDecision:
    """The three credential conditions applied to one user."""

    username: str
    is_active: bool
    checks: tuple[tuple[str, Check], ...]

    @property
    def rule(self) -> str | None:
        """The first condition that held, in the specification's order."""
        return next((rule for rule, check in self.checks if check.held), None)

    @property
    def authenticates(self) -> bool:
        return self.is_active and self.rule is not None


def decide(cert: x509.Certificate, profile: Profile, match_cn: bool, approval: Approval) -> UserDecision:
    return UserDecision(
        profile.username,
        profile.is_active,
        (
            (RULE_THUMBPRINT, thumbprint_on_profile(cert, profile)),
            (RULE_CN, cn_on_profile_and_ca_approved(cert, profile, approval)),
            (RULE_MATCH_CN, cn_matches_user_and_ca_approved(cert, profile, match_cn, approval)),
        ),
    )


@dataclass(frozen=True)
class Authentication:
    ok: bool
    user: str | None
    rule: str | None
    reasons: tuple[str, ...]
    decisions: tuple[UserDecision, ...] = ()


@dataclass(frozen=True)
class Verdict:
    """The whole answer for one certificate: connect, authenticate, and the category."""

    connection: Connection
    approval: Approval
    authentication: Authentication

    @property
    def category(self) -> str:
        if not self.connection.ok:
            return CANNOT_CONNECT
        return AUTHENTICATES if self.authentication.ok else CONNECTS_ONLY

    @property
    def category_text(self) -> str:
        return CATEGORY_TEXT[self.category]


def authenticate(
    cert: x509.Certificate,
    connection: Connection,
    approval: Approval,
    profiles: list[Profile] | tuple[Profile, ...],
    match_cn: bool,
    username: str | None = None,
) -> Authentication:
    """Apply the credential conditions.

    With ``username``, only that user is considered (``profiles`` should hold just that
    user, or nothing if no such user exists). Without it, ``profiles`` are the candidate
    users: the certificate authenticates only if exactly one of them is authenticated.
    """
    if username is not None:
        profiles = [p for p in profiles if name_key(p.username) == name_key(username)]
    decisions = tuple(decide(cert, p, match_cn, approval) for p in profiles)
    winners = [d for d in decisions if d.authenticates]
    reasons: list[str] = []
    if not connection.ok:
        reasons.append("The certificate cannot connect, so it cannot authenticate anyone. " + connection.reason)
    if username is not None and not profiles:
        reasons.append(f"There is no user '{username}'.")
    elif not decisions:
        reasons.extend(_no_candidate_reasons(cert, match_cn))
    for decision in decisions:
        if decision.authenticates:
            held = dict(decision.checks)[decision.rule]
            reasons.append(_sentence(held.reason))
        elif decision.rule is not None and not decision.is_active:
            reasons.append(f"User '{decision.username}' is inactive, so no certificate signs them on.")
        else:
            reasons.extend(_sentence(check.reason) for _, check in decision.checks)
    if len(winners) > 1:
        names = ", ".join(f"'{d.username}'" for d in winners)
        reasons.insert(
            0,
            f"The certificate authenticates several users ({names}); a username must be given to choose one.",
        )
    if connection.ok and len(winners) == 1:
        winner = winners[0]
        return Authentication(True, winner.username, winner.rule, tuple(reasons), decisions)
    return Authentication(False, None, None, tuple(_dedupe(reasons)), decisions)


def _no_candidate_reasons(cert, match_cn: bool) -> list[str]:
    shown = format_thumbprint(sha1_thumbprint(cert))
    reasons = [f"No user has thumbprint {shown} on their profile."]
    problem = cn_problem(cert)
    if problem:
        reasons.append(_sentence(problem))
        return reasons
    cn = common_names(cert.subject)[0]
    reasons.append(f"No user has CN '{cn}' on their profile.")
    if match_cn:
        reasons.append(f"No user has '{cn}' as username or full name.")
    else:
        reasons.append("The Match Cert CN to Username/Full Name option is off.")
    return reasons


def _sentence(text: str) -> str:
    text = text[:1].upper() + text[1:]
    return text if text.endswith(".") else text + "."


def _dedupe(items):
    seen, out = set(), []
    for item in items:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out


def evaluate(
    cert: x509.Certificate,
    chain,
    config: TrustConfig,
    profiles,
    at: datetime,
    username: str | None = None,
    connection: Connection | None = None,
) -> Verdict:
    """Connect, then authenticate: the verdict for one presented certificate.

    ``connection`` may be passed when it was computed (or cached) already.
    """
    if connection is None:
        connection = connect(cert, chain, config, at)
    approval = issuing_ca_approval(cert, connection.path if connection.ok else (), config.approved)
    authentication = authenticate(cert, connection, approval, profiles, config.match_cn, username)
    return Verdict(connection, approval, authentication)
