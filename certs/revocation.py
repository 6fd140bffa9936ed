"""Revocation: is any certificate on a validated path revoked? Pure: no Django, no database.

CRLs are read here (``read_crls``, ``inspect``) and judged here (``check_path``); where they are
kept is the caller's business: the decision reads CRL descriptions (``CrlRecord``) and looks
revoked serials up through a function, so a CRL of a million entries is never parsed while
someone signs on.

The rules follow RFC 5280 section 6.3 for the parts the app implements: complete and delta
CRLs, issuing distribution points (scope by certificate kind, distribution point names and
reasons), indirect CRLs with certificate-issuer entries, and CRLs signed by a separate key of
the same CA. Every status says why, in a sentence.

OCSP answers are judged in ``ocsp`` and obtained through a function the caller gives
(``RevocationConfig.ask``), which keeps this module free of the network and the database. A
policy of CRL then OCSP asks the responder only when the CRLs cannot tell. An answer signed by a
delegated responder counts only if that responder's certificate carries id-pkix-ocsp-nocheck or
the CA's CRLs say it is not revoked.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

from . import ocsp
from .x509 import directly_issued_by, display_name, format_thumbprint, is_ca, public_key_sha256, sha1_thumbprint

# --- policy ----------------------------------------------------------------------------------

CHECK_OFF = "off"
CHECK_CRL = "crl"
CHECK_OCSP = "ocsp"
CHECK_CRL_OCSP = "crl+ocsp"
CHECKS = (CHECK_OFF, CHECK_CRL, CHECK_OCSP, CHECK_CRL_OCSP)
CHECK_TEXT = {
    CHECK_CRL: "checked by CRL",
    CHECK_OCSP: "checked by OCSP (the certificate's own responder)",
    CHECK_CRL_OCSP: "checked by CRL, then by OCSP when the CRLs cannot tell",
}

REFUSE = "refuse"
ALLOW = "allow"
WHEN_UNKNOWN = (REFUSE, ALLOW)

MAX_GRACE_HOURS = 24 * 365
# How long a CA certificate's status is reused for the certificates it issued, and how many are kept.
MEMO_LIFETIME = timedelta(seconds=30)
MEMO_SIZE = 1000
# How many derived facts (see ``RevocationConfig.derived``) a configuration keeps.
DERIVED_SIZE = 10_000
_MISSING = object()

# The statuses of one certificate.
GOOD = "good"
REVOKED = "revoked"
UNKNOWN = "unknown"
NOT_CHECKED = "not_checked"


@dataclass(frozen=True)
class Policy:
    check: str = CHECK_OFF
    when_unknown: str = REFUSE
    grace_hours: int = 0

    def strictness(self) -> tuple:
        """Orders policies from the most lenient to the strictest."""
        checked = {CHECK_OFF: 0, CHECK_CRL: 1, CHECK_OCSP: 1, CHECK_CRL_OCSP: 2}.get(self.check, 1)
        return (checked, self.when_unknown == REFUSE, -self.grace_hours)

    def describe(self) -> str:
        if self.check == CHECK_OFF:
            return "revocation is not checked"
        grace = ""
        if self.check != CHECK_OCSP:
            grace = f", {self.grace_hours} hour{'s' if self.grace_hours != 1 else ''} of grace past a CRL's next update"
        unknown = "refused" if self.when_unknown == REFUSE else "allowed"
        return f"{CHECK_TEXT[self.check]}; a certificate whose status is unknown is {unknown}{grace}"


# --- reading CRLs ----------------------------------------------------------------------------


class CrlError(ValueError):
    """A CRL cannot be read or used; the message says why, for a person."""


PEM_CRL = re.compile(rb"-----BEGIN X509 CRL-----.+?-----END X509 CRL-----", re.DOTALL)


def read_crls(data: bytes) -> list[x509.CertificateRevocationList]:
    """Every CRL in ``data``: one DER CRL, or any number of PEM CRLs."""
    if not data:
        raise CrlError("the file is empty.")
    if b"-----BEGIN" in data:
        blocks = PEM_CRL.findall(data)
        if not blocks:
            raise CrlError("the file is PEM but holds no CRL (no '-----BEGIN X509 CRL-----' block).")
        crls = []
        for number, block in enumerate(blocks, 1):
            try:
                crls.append(x509.load_pem_x509_crl(block))
            except ValueError:
                raise CrlError(f"CRL number {number} in the file is damaged and cannot be read.") from None
        return crls
    try:
        return [x509.load_der_x509_crl(data)]
    except ValueError:
        raise CrlError("the file is neither a DER nor a PEM CRL.") from None


REASON_TEXT = {
    x509.ReasonFlags.unspecified: "unspecified",
    x509.ReasonFlags.key_compromise: "key compromise",
    x509.ReasonFlags.ca_compromise: "CA compromise",
    x509.ReasonFlags.affiliation_changed: "affiliation changed",
    x509.ReasonFlags.superseded: "superseded",
    x509.ReasonFlags.cessation_of_operation: "cessation of operation",
    x509.ReasonFlags.certificate_hold: "certificate hold",
    x509.ReasonFlags.privilege_withdrawn: "privilege withdrawn",
    x509.ReasonFlags.aa_compromise: "AA compromise",
    x509.ReasonFlags.remove_from_crl: "removed from CRL",
}
# The reasons a set of CRLs must cover together before a certificate is known to be good.
ALL_REASONS = frozenset(REASON_TEXT) - {x509.ReasonFlags.unspecified, x509.ReasonFlags.remove_from_crl}


def reason_text(code: str) -> str:
    """Words for a stored reason code ('keyCompromise' -> 'key compromise')."""
    if not code:
        return "no reason given"
    try:
        return REASON_TEXT[x509.ReasonFlags(code)]
    except ValueError:
        return code


def name_key(name: x509.Name) -> str:
    """How names are compared in the store: a digest of the name's RFC 4514 text."""
    return hashlib.sha256(name.rfc4514_string().encode()).hexdigest()


def general_name_key(name: x509.GeneralName) -> str:
    if isinstance(name, x509.DirectoryName):
        return "dn:" + name.value.rfc4514_string()
    if isinstance(name, x509.UniformResourceIdentifier):
        return "uri:" + name.value
    return f"{type(name).__name__}:{name.value}"


def serial_key(serial: int) -> str:
    """A serial number as stored: lower-case hex, signed (PKITS has negative ones)."""
    return format(serial, "x")


@dataclass(frozen=True)
class Scope:
    """What an issuing distribution point limits a CRL to (everything, without one)."""

    only_user: bool = False
    only_ca: bool = False
    only_attribute: bool = False
    indirect: bool = False
    reasons: frozenset[str] | None = None  # ReasonFlags values; None: all
    names: tuple[str, ...] | None = None  # general_name_key of each name; None: no name

    def as_dict(self) -> dict:
        return {
            "only_user": self.only_user,
            "only_ca": self.only_ca,
            "only_attribute": self.only_attribute,
            "indirect": self.indirect,
            "reasons": sorted(self.reasons) if self.reasons is not None else None,
            "names": list(self.names) if self.names is not None else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> Scope:
        reasons, names = data.get("reasons"), data.get("names")
        return cls(
            only_user=bool(data.get("only_user")),
            only_ca=bool(data.get("only_ca")),
            only_attribute=bool(data.get("only_attribute")),
            indirect=bool(data.get("indirect")),
            reasons=frozenset(reasons) if reasons is not None else None,
            names=tuple(names) if names is not None else None,
        )

    @property
    def key(self) -> str:
        """Equal for CRLs of the same scope (a delta applies only to a complete CRL of its scope)."""
        if self == Scope():
            return ""
        return hashlib.sha256(repr(sorted(self.as_dict().items())).encode()).hexdigest()


def _full_names(point_name, relative_name, base: x509.Name) -> tuple[str, ...] | None:
    if point_name:
        return tuple(general_name_key(n) for n in point_name)
    if relative_name is not None:
        return (general_name_key(x509.DirectoryName(x509.Name([*base.rdns, relative_name]))),)
    return None


def scope_of(crl: x509.CertificateRevocationList) -> Scope:
    try:
        idp = crl.extensions.get_extension_for_class(x509.IssuingDistributionPoint).value
    except x509.ExtensionNotFound:
        return Scope()
    return Scope(
        only_user=idp.only_contains_user_certs,
        only_ca=idp.only_contains_ca_certs,
        only_attribute=idp.only_contains_attribute_certs,
        indirect=idp.indirect_crl,
        reasons=frozenset(r.value for r in idp.only_some_reasons) if idp.only_some_reasons else None,
        names=_full_names(idp.full_name, idp.relative_name, crl.issuer),
    )


def _extension_value(crl, cls):
    try:
        return crl.extensions.get_extension_for_class(cls).value
    except x509.ExtensionNotFound:
        return None


@dataclass(frozen=True)
class Entry:
    """One revoked serial as stored: its issuer ('' for the CRL's own issuer), date and reason."""

    serial: str
    issuer_key: str
    revoked_at: datetime
    reason: str  # a ReasonFlags value, or ''


@dataclass(frozen=True)
class Inspected:
    """A CRL read and checked, ready to store (the entries are read lazily, in one pass)."""

    crl: x509.CertificateRevocationList
    number: int | None
    delta_base: int | None
    scope: Scope

    @property
    def is_delta(self) -> bool:
        return self.delta_base is not None

    def entries(self) -> Iterator[Entry]:
        return (Entry(*row) for row in self.rows())

    def rows(self) -> Iterator[tuple[str, str, datetime, str]]:
        """Every revoked serial as (serial, issuer key, date, reason), in one pass (a CRL may
        hold millions). In an indirect CRL an
        entry's issuer is given by its certificate issuer extension, or is that of the entry
        before it. An entry with a critical extension the app does not understand raises
        ``CrlError``: RFC 5280 says such a CRL must not be used."""
        issuer = ""
        indirect = self.scope.indirect
        reason_class, issuer_class, unknown_class = x509.CRLReason, x509.CertificateIssuer, x509.UnrecognizedExtension
        for revoked in self.crl:
            extensions = revoked.extensions
            reason = ""
            if len(extensions):
                for ext in extensions:
                    value = ext.value
                    if isinstance(value, reason_class):
                        reason = value.reason.value
                    elif isinstance(value, issuer_class):
                        if indirect:
                            names = [n.value for n in value if isinstance(n, x509.DirectoryName)]
                            issuer = name_key(names[0]) if names else issuer
                    elif ext.critical and isinstance(value, unknown_class):
                        raise CrlError(
                            f"the entry for serial {serial_key(revoked.serial_number)} has a critical extension the "
                            f"app does not understand ({ext.oid.dotted_string}), so the CRL must not be used."
                        )
            yield format(revoked.serial_number, "x"), issuer, revoked.revocation_date_utc, reason


def inspect(crl: x509.CertificateRevocationList) -> Inspected:
    """Refuse what the app cannot honour: a critical CRL extension it does not understand (RFC 5280
    says such a CRL must not be used; entries are checked as they are read, by ``entries``)."""
    for ext in crl.extensions:
        if ext.critical and isinstance(ext.value, x509.UnrecognizedExtension):
            raise CrlError(
                f"it has a critical extension the app does not understand ({ext.oid.dotted_string}), "
                "so it must not be used."
            )
    number = _extension_value(crl, x509.CRLNumber)
    delta = _extension_value(crl, x509.DeltaCRLIndicator)
    return Inspected(
        crl=crl,
        number=number.crl_number if number is not None else None,
        delta_base=delta.crl_number if delta is not None else None,
        scope=scope_of(crl),
    )


def may_sign_crls(cert: x509.Certificate) -> bool:
    """A key whose key usage is limited must list cRLSign to sign CRLs."""
    try:
        return cert.extensions.get_extension_for_class(x509.KeyUsage).value.crl_sign
    except x509.ExtensionNotFound:
        return True


def signature_verifies(crl: x509.CertificateRevocationList, cert: x509.Certificate) -> bool:
    try:
        return crl.is_signature_valid(cert.public_key())
    except (TypeError, ValueError, InvalidSignature, UnsupportedAlgorithm):
        return False


def find_signer(crl: x509.CertificateRevocationList, known, delegated=()) -> x509.Certificate:
    """The certificate whose key verifies the CRL's signature, or ``CrlError``.

    ``known`` are the CA certificates in the stores; ``delegated`` are certificates given with
    the CRL, which count only when a known CA issued them for signing CRLs (key usage cRLSign).
    Only a certificate named as the CRL's issuer is tried, and its key must verify the
    signature: a CRL that merely names a known CA is refused.
    """
    issuer = display_name(crl.issuer)
    namesakes = [c for c in known if c.subject == crl.issuer]
    verified = [c for c in namesakes if signature_verifies(crl, c)]
    allowed = [c for c in verified if may_sign_crls(c)]
    if allowed:
        return allowed[0]
    for cert in delegated:
        if cert.subject != crl.issuer or not signature_verifies(crl, cert):
            continue
        if not _explicitly_signs_crls(cert):
            raise CrlError(
                f"it is signed by '{issuer}' ({format_thumbprint(sha1_thumbprint(cert))}), given with it, whose key "
                "usage does not allow signing CRLs (no cRLSign), so it is refused."
            )
        if not any(directly_issued_by(cert, ca) for ca in known):
            raise CrlError(
                f"it is signed by '{issuer}' ({format_thumbprint(sha1_thumbprint(cert))}), given with it, which no CA "
                "in the trusted root store, the intermediate pool or the approved CA list issued, so it is refused."
            )
        return cert
    if verified:
        raise CrlError(
            f"it is signed by '{issuer}', whose certificate's key usage does not allow signing CRLs (no cRLSign), "
            "so it is refused."
        )
    if namesakes or any(c.subject == crl.issuer for c in delegated):
        raise CrlError(
            f"its signature does not verify with the key of any known CA named '{issuer}': it was not signed by "
            "that CA (or it was altered), so it is refused."
        )
    raise CrlError(
        f"it is issued by '{issuer}', and no CA of that name is in the trusted root store, the intermediate pool or "
        "the approved CA list. Add the CA first, then the CRL (a CRL signed by a separate CRL-signing certificate "
        "is added with that certificate in the same command)."
    )


def _explicitly_signs_crls(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.KeyUsage).value.crl_sign
    except x509.ExtensionNotFound:
        return False


# --- the decision ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CrlRecord:  # noqa: PLW1641 - cached_property needs a __dict__
    """A stored CRL as the decision reads it: never its entries."""

    id: int
    issuer: x509.Name
    signer: x509.Certificate
    this_update: datetime
    next_update: datetime | None
    number: int | None
    delta_base: int | None
    scope: Scope

    @property
    def is_delta(self) -> bool:
        return self.delta_base is not None

    @functools.cached_property
    def issuer_key(self) -> str:
        return name_key(self.issuer)

    def describe(self) -> str:
        kind = "delta CRL" if self.is_delta else "CRL"
        until = f"next update {_when(self.next_update)}" if self.next_update else "no next update given"
        return f"the {kind} issued by '{display_name(self.issuer)}' (this update {_when(self.this_update)}, {until})"


Lookup = Callable[[int, str], list[Entry]]
# ``ask(cert, issuer, at)``: the judged OCSP answer about ``cert`` (cached, or from its responder).
Ask = Callable[[x509.Certificate, x509.Certificate, datetime], ocsp.Answer]


def ca_identity(ca: x509.Certificate) -> str:
    """One CA, whichever of its certificates is at hand: its name and its key."""
    return f"{name_key(ca.subject)}|{public_key_sha256(ca)}"


def override_map(overrides: list[tuple[x509.Certificate, Policy]]) -> dict[str, Policy]:
    """Per-CA overrides by ca_identity. An admin may set policies on two certificates of one CA
    (a CA certificate and its cross-signed copy) that disagree: the strictest applies to both,
    so which path a client's chain takes never decides whether revocation is checked."""
    found: dict[str, Policy] = {}
    for ca, policy in overrides:
        key = ca_identity(ca)
        if key not in found or policy.strictness() > found[key].strictness():
            found[key] = policy
    return found


@dataclass(frozen=True)
class RevocationConfig:
    """The policies and the CRLs in force; ``lookup(crl_id, serial)`` finds stored entries."""

    default: Policy = Policy()
    # By the CA (ca_identity: its name and key), so every certificate of one CA (a cross-signed or
    # re-issued copy) follows the same policy, whichever path a client's chain takes.
    overrides: Mapping[str, Policy] = field(default_factory=dict)
    crls: tuple[CrlRecord, ...] = ()
    lookup: Lookup | None = None
    ask: Ask | None = None
    # The statuses of CA certificates, which every certificate they issued shares, kept a short
    # while: (the path from the CA up) -> (status, when it was reached).
    memo: dict = field(default_factory=dict, compare=False, repr=False)
    # What the decision derives from the policies and the CRL descriptions alone (a CA's policy,
    # the CRLs of an issuer, a CRL's delta): worked out once per configuration, that is, once
    # per trust generation.
    derived: dict = field(default_factory=dict, compare=False, repr=False)

    def policy_for(self, ca: x509.Certificate | None) -> Policy:
        if ca is None or not self.overrides:
            return self.default
        return self.remember(("policy", ca), lambda: self.overrides.get(ca_identity(ca), self.default))

    def remember(self, key: tuple, work: Callable):
        """``work()``, worked out once per configuration for ``key``."""
        found = self.derived.get(key, _MISSING)
        if found is _MISSING:
            if len(self.derived) >= DERIVED_SIZE:
                self.derived.clear()
            found = self.derived[key] = work()
        return found

    @property
    def active(self) -> bool:
        return self.default.check != CHECK_OFF or any(p.check != CHECK_OFF for p in self.overrides.values())


class Status:
    """The revocation status of one certificate on the path.

    Its words (``reason``, ``source``) are written only when someone reads them: sign-on reads
    them only for a refusal, and most decisions are not refusals. Give ``reason`` as text, or as a
    function that writes it; ``crl`` is the CRL the status comes from (``source`` describes it).
    """

    __slots__ = ("cert", "status", "_reason", "crl", "_source", "this_update", "next_update", "refuses", "valid_until")

    def __init__(
        self,
        cert: x509.Certificate,
        status: str,
        reason: str | Callable[[], str],
        crl: CrlRecord | None = None,
        *,
        source: str | None = None,  # where a status not from a CRL comes from (an OCSP responder)
        this_update: datetime | None = None,
        next_update: datetime | None = None,
        refuses: bool = False,  # this status keeps the certificate from connecting
        valid_until: datetime | None = None,  # the moment this status may change by time alone
    ):
        self.cert, self.status, self._reason, self.crl, self._source = cert, status, reason, crl, source
        self.this_update = crl.this_update if crl is not None else this_update
        self.next_update = crl.next_update if crl is not None else next_update
        self.refuses, self.valid_until = refuses, valid_until

    @property
    def reason(self) -> str:
        if callable(self._reason):
            self._reason = self._reason()
        return self._reason

    @property
    def source(self) -> str:
        if self._source is not None:
            return self._source
        return self.crl.describe() if self.crl is not None else ""

    def _key(self) -> tuple:
        return (self.cert, self.status, self.reason, self.source, self.refuses, self.valid_until)

    def __eq__(self, other) -> bool:
        return isinstance(other, Status) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"Status({self.status!r}, {self.reason!r})"

    def as_dict(self) -> dict:
        return {
            "thumbprint": format_thumbprint(sha1_thumbprint(self.cert)),
            "status": self.status,
            "source": self.source or None,
            "this_update": self.this_update.isoformat() if self.this_update else None,
            "next_update": self.next_update.isoformat() if self.next_update else None,
            "reason": self.reason,
        }


def summary(statuses) -> str:
    """One sentence on a connected path's revocation check, for a holding-tank entry: empty when
    nothing was checked; otherwise whether it was found not revoked, or let through unknown."""
    checked = [s for s in statuses if s.status != NOT_CHECKED]
    if not checked:
        return ""
    unknown = [s for s in checked if s.status == UNKNOWN]
    if unknown:
        return f"Revocation status unknown, let through by the policy: {unknown[0].reason}"[:500]
    sources = sorted({s.source for s in checked if s.source})
    where = f" ({'; '.join(sources)})" if sources else ""
    return f"Not revoked: checked for {len(checked)} certificate{'s' if len(checked) != 1 else ''} on the path{where}."[
        :500
    ]


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "never"


def _who(cert: x509.Certificate) -> str:
    return f"'{display_name(cert.subject)}' ({format_thumbprint(sha1_thumbprint(cert))})"


@dataclass(frozen=True)
class _Point:
    names: tuple[str, ...] | None
    reasons: frozenset[str] | None
    crl_issuers: tuple[x509.Name, ...] | None


def _points(cert: x509.Certificate) -> list[_Point]:
    try:
        dps = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return [_Point(None, None, None)]
    points = []
    for dp in dps:
        issuers = tuple(n.value for n in dp.crl_issuer or () if isinstance(n, x509.DirectoryName)) or None
        base = issuers[0] if issuers else cert.issuer
        points.append(
            _Point(
                _full_names(dp.full_name, dp.relative_name, base),
                frozenset(r.value for r in dp.reasons) if dp.reasons else None,
                issuers,
            )
        )
    return points or [_Point(None, None, None)]


def _covers(crl: CrlRecord, cert: x509.Certificate, point: _Point) -> str | None:
    """None when ``crl`` covers ``cert`` through ``point``; else why not (RFC 5280 6.3.3 b)."""
    scope = crl.scope
    if point.crl_issuers:
        if crl.issuer not in point.crl_issuers:
            return "it is not issued by the CRL issuer the certificate names"
        if not scope.indirect:
            return "the certificate names another CRL issuer, and this CRL is not an indirect CRL"
    elif crl.issuer != cert.issuer:
        return "it is issued by another CA"
    if scope.names is not None:
        theirs = point.names if point.names is not None else None
        if theirs is None and point.crl_issuers:
            theirs = tuple(general_name_key(x509.DirectoryName(n)) for n in point.crl_issuers)
        if not theirs or not set(theirs) & set(scope.names):
            return "its distribution point is not one the certificate names"
    if scope.only_attribute:
        return "it covers attribute certificates only"
    if scope.only_user and is_ca(cert):
        return "it covers end-entity certificates only"
    if scope.only_ca and not is_ca(cert):
        return "it covers CA certificates only"
    return None


def _reasons(crl: CrlRecord, point: _Point) -> frozenset:
    mine = crl.scope.reasons if crl.scope.reasons is not None else frozenset(r.value for r in ALL_REASONS)
    return mine & point.reasons if point.reasons is not None else mine


class _Checker:
    def __init__(self, config: RevocationConfig, path: tuple[x509.Certificate, ...], at: datetime):
        self.config, self.path, self.at = config, path, at
        self.above = path[1:]

    def status(self, position: int, depth: int = 0) -> Status:
        cert, path = self.path[position], self.path
        if position == len(path) - 1:
            return Status(cert, NOT_CHECKED, ANCHOR_NOT_CHECKED)
        issuer = path[position + 1]
        # The CAs a CRL for this certificate may be signed by (or whose certificates may sign it).
        self.above = path[position + 1 :]
        if position == 0 or depth:
            return self.status_of(cert, issuer, self.config.policy_for(issuer), depth)
        memo, key = self.config.memo, path[position:]
        found = memo.get(key)
        if found is not None:
            status, reached = found
            fresh = status.valid_until is None or self.at < status.valid_until
            if fresh and timedelta(0) <= self.at - reached <= MEMO_LIFETIME:
                return status
        status = self.status_of(cert, issuer, self.config.policy_for(issuer), depth)
        if len(memo) >= MEMO_SIZE:
            memo.clear()
        memo[key] = (status, self.at)
        return status

    def status_of(self, cert, issuer, policy: Policy, depth: int) -> Status:
        if policy.check == CHECK_OFF:
            return Status(cert, NOT_CHECKED, POLICY_OFF)
        if policy.check == CHECK_OCSP:
            return self._by_ocsp(cert, issuer, policy, depth=depth)
        status, why, crl = self._by_crl(cert, policy, depth)
        if status is not None:
            return status
        if policy.check == CHECK_CRL_OCSP:
            return self._by_ocsp(cert, issuer, policy, crl_why=why, depth=depth)
        return self._unknown(cert, policy, why, crl)

    def _by_ocsp(self, cert, issuer, policy: Policy, crl_why: str = "", depth: int = 0) -> Status:
        ask = self.config.ask
        # The store always gives ``ask``; a configuration made without one cannot learn anything.
        answer = ask(cert, issuer, self.at) if ask is not None else ocsp.unknown("OCSP cannot be asked here", "")
        if answer.delegate is not None and answer.status != ocsp.UNKNOWN:
            answer = self._delegate_checked(answer, policy, depth)
        times = {"this_update": answer.this_update, "next_update": answer.next_update}
        if answer.status == ocsp.REVOKED:
            return Status(
                cert,
                REVOKED,
                f"{_who(cert)} was revoked on {_when(answer.revoked_at)} "
                f"(reason: {reason_text(answer.reason)}), according to {answer.source}",
                source=answer.source,
                refuses=True,
                valid_until=answer.usable_until,
                **times,
            )
        if answer.status == ocsp.GOOD:
            return Status(
                cert,
                GOOD,
                f"{_who(cert)} is good according to {answer.source}",
                source=answer.source,
                valid_until=answer.usable_until,
                **times,
            )
        why = answer.explain()
        if crl_why:
            why = f"{crl_why}; and {why}"
        return self._unknown(
            cert,
            policy,
            why,
            None,
            source=answer.source if answer.responder else "",
            # An answer that counted (a responder that does not know the certificate) is asked again
            # once it goes stale; an unreachable responder is asked again with the next verdict.
            valid_until=answer.usable_until,
            **times,
        )

    def _delegate_checked(self, answer: ocsp.Answer, policy: Policy, depth: int) -> ocsp.Answer:
        """The answer, if the delegated responder certificate that signed it may be trusted: it
        carries id-pkix-ocsp-nocheck, or the CA's CRLs say it is not revoked (never OCSP again:
        that could go round for ever). Otherwise an unknown answer that says why (RFC 6960
        section 4.2.2.2.1). Its issuer is the certificate's issuer (``ocsp`` checked that), the
        first CA above."""
        delegate = answer.delegate
        if not ocsp.needs_status_check(delegate):
            return answer
        status, why, _crl = self._by_crl(delegate, policy, depth)
        times = {"this_update": answer.this_update, "next_update": answer.next_update}
        if status is not None and status.status == GOOD:
            until = [t for t in (answer.usable_until, status.valid_until) if t is not None]
            return replace(answer, usable_until=min(until) if until else None)
        said = answer.why
        if status is not None:  # revoked
            return ocsp.unknown(
                f"{said}, but the OCSP responder's certificate {status.reason}, so its answer cannot be trusted",
                answer.responder,
                **times,
            )
        return ocsp.unknown(
            f"{said}, but the responder's certificate {_who(delegate)} has no id-pkix-ocsp-nocheck, and its own "
            f"revocation status cannot be checked by CRL ({why})",
            answer.responder,
            **times,
        )

    def _by_crl(self, cert, policy: Policy, depth: int) -> tuple[Status | None, str, CrlRecord | None]:
        """(status, '', None) when the CRLs decide; else (None, why not, a CRL used if any)."""
        grace = timedelta(hours=policy.grace_hours)
        covered: set[str] = set()
        used: list[CrlRecord] = []
        notes: list[str] = []
        for point in _points(cert):
            for crl in self._complete_crls(point, cert):
                problem = _covers(crl, cert, point)
                if problem:
                    notes.append(f"{crl.describe()} does not cover it: {problem}")
                    continue
                problem = self._unusable(crl, grace, depth, cert)
                if problem:
                    notes.append(problem)
                    continue
                delta = self._delta_for(crl)
                if delta is not None:
                    problem = self._unusable(delta, grace, depth, cert)
                    if problem:
                        notes.append(problem)
                        continue
                revoked = self._revoked(cert, crl, delta)
                if revoked is not None:
                    entry, source = revoked
                    return (
                        Status(
                            cert,
                            REVOKED,
                            lambda entry=entry, source=source: (
                                f"{_who(cert)} was revoked on {_when(entry.revoked_at)} "
                                f"(reason: {reason_text(entry.reason)}), according to {source.describe()}"
                            ),
                            source,
                            refuses=True,
                        ),
                        "",
                        None,
                    )
                covered |= self.config.remember(
                    ("reasons", crl.id, point.reasons), lambda crl=crl, point=point: _reasons(crl, point)
                )
                used.append(crl)
                if delta is not None:
                    used.append(delta)
        if covered >= ALL_REASON_VALUES:
            newest = max(used, key=lambda c: c.this_update)
            stale_at = [c.next_update + grace for c in used if c.next_update is not None]
            return (
                Status(
                    cert,
                    GOOD,
                    lambda: f"{_who(cert)} is not on {newest.describe()}",
                    newest,
                    valid_until=min(stale_at) if stale_at else None,
                ),
                "",
                None,
            )
        if used:
            notes.insert(0, "the CRLs found cover only some revocation reasons")
        if not notes:
            notes.append(f"no CRL from '{display_name(cert.issuer)}' is stored")
        return None, "; ".join(notes), used[0] if used else None

    def _unknown(self, cert, policy: Policy, why: str, crl: CrlRecord | None, **found) -> Status:
        refuses = policy.when_unknown == REFUSE
        rule = "refuses" if refuses else "allows"
        return Status(
            cert,
            UNKNOWN,
            f"the revocation status of {_who(cert)} cannot be determined ({why}); the revocation policy {rule} "
            "certificates whose status is unknown",
            crl,
            refuses=refuses,
            **found,
        )

    def _complete_crls(self, point: _Point, cert) -> list[CrlRecord]:
        issuers = point.crl_issuers or (cert.issuer,)
        return self.config.remember(("complete", issuers), lambda: self._newest_complete(issuers))

    def _newest_complete(self, issuers) -> list[CrlRecord]:
        found = [c for c in self.config.crls if not c.is_delta and c.issuer in issuers]
        # Of CRLs of one issuer and scope, only the newest counts: an older one cannot hide a revocation.
        newest: dict[tuple, CrlRecord] = {}
        for crl in found:
            key = (crl.issuer.rfc4514_string(), crl.scope.key)
            if key not in newest or _order(crl) > _order(newest[key]):
                newest[key] = crl
        return list(newest.values())

    def _delta_for(self, crl: CrlRecord) -> CrlRecord | None:
        return self.config.remember(("delta", crl.id), lambda: self._newest_delta(crl))

    def _newest_delta(self, crl: CrlRecord) -> CrlRecord | None:
        deltas = [
            d
            for d in self.config.crls
            if d.is_delta
            and d.issuer == crl.issuer
            and d.scope.key == crl.scope.key
            and crl.number is not None
            and d.delta_base <= crl.number
            and (d.number is None or d.number > crl.number)
        ]
        return max(deltas, key=_order) if deltas else None

    def _unusable(self, crl: CrlRecord, grace: timedelta, depth: int, cert) -> str | None:
        if crl.this_update > self.at:
            return f"{crl.describe()} is not valid yet"
        if crl.next_update is not None and crl.next_update + grace < self.at:
            return f"{crl.describe()} is stale: its next update was due {_when(crl.next_update)}" + (
                f", and the {int(grace.total_seconds() // 3600)} hours of grace are over" if grace else ""
            )
        return self._signer_problem(crl, depth, cert)

    def _signer_problem(self, crl: CrlRecord, depth: int, checking) -> str | None:
        """The CRL's signer must be a CA above the certificate on the path (the same key), or a
        certificate one of them issued for signing CRLs that is valid now and not itself revoked
        (a CRL-signing certificate may be covered by the CRL it signs, as its own distribution
        point says)."""
        signer = crl.signer
        if not self.config.remember(("may sign", crl.id), lambda: may_sign_crls(signer)):
            return f"{crl.describe()} is signed by a key not allowed to sign CRLs"
        if signer in self.above:
            return None
        for cert in self.above:
            if cert.subject == signer.subject and cert.public_key() == signer.public_key():
                return None
        if depth > 0 and signer == checking:
            return None
        if not (signer.not_valid_before_utc <= self.at <= signer.not_valid_after_utc):
            return f"{crl.describe()} is signed by {_who(signer)}, which is not valid now"
        parent = next((c for c in self.above if directly_issued_by(signer, c)), None)
        if parent is None:
            return f"{crl.describe()} is signed by {_who(signer)}, which no CA on the path issued"
        if depth >= 2:
            return f"{crl.describe()} is signed by {_who(signer)}, whose own status is too far removed to check"
        status = self.status_of(signer, parent, self.config.policy_for(parent), depth + 1)
        if status.status != GOOD:
            return f"{crl.describe()} is signed by {_who(signer)}, whose own status is {status.status}"
        return None

    def _revoked(self, cert, crl: CrlRecord, delta: CrlRecord | None):
        lookup = self.config.lookup
        if lookup is None:  # pragma: no cover - the store always gives one
            return None
        serial = serial_key(cert.serial_number)
        wanted = self.config.remember(("name", cert.issuer), lambda: name_key(cert.issuer))
        if delta is not None:
            entry = _matching(lookup(delta.id, serial), delta, wanted)
            if entry is not None:
                return None if entry.reason == x509.ReasonFlags.remove_from_crl.value else (entry, delta)
        entry = _matching(lookup(crl.id, serial), crl, wanted)
        if entry is not None and entry.reason != x509.ReasonFlags.remove_from_crl.value:
            return entry, crl
        return None


ANCHOR_NOT_CHECKED = (
    "a trust anchor is trusted as installed: to stop trusting it, remove it from the trusted root store"
)
POLICY_OFF = "the revocation policy for its CA does not check revocation"
ALL_REASON_VALUES = frozenset(r.value for r in ALL_REASONS)


def _matching(entries: list[Entry], crl: CrlRecord, wanted_issuer: str) -> Entry | None:
    own = crl.issuer_key
    return next((e for e in entries if (e.issuer_key or own) == wanted_issuer), None)


def _order(crl: CrlRecord):
    return (crl.number if crl.number is not None else -1, crl.this_update)


def check_path(path, config: RevocationConfig, at: datetime) -> tuple[Status, ...]:
    """The status of every certificate on a validated path, from the certificate up."""
    path = tuple(path)
    checker = _Checker(config, path, at)
    return tuple(checker.status(i) for i in range(len(path)))
