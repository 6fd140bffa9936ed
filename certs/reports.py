"""Read-only use cases: the doctor's diagnosis, what a change would break, the sign-on overview,
the state of the stores and what expires. Pages and commands call these; they change nothing
(except mailing)."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace

from django.conf import settings
from django.core.mail import send_mail
from django.utils import timezone

from audit.models import AuditEvent
from users.models import Method, SignOnMode, User

from . import chain, crls, trust, verdicts
from .impact import Consequence, KnownCertificate, impact, signed_on_users
from .models import Certificate, Credential, CredentialKind, OrgCA, Store, StoreEntry, TankEntry, expiry_cutoff
from .x509 import display_name, format_thumbprint, sha1_thumbprint, sha256_fingerprint

SIGN_ON_ACTIONS = ["signon.success", "signon.refused"]

# --- the doctor --------------------------------------------------------------------------------


@dataclass
class Diagnosis:
    verdict: trust.Verdict
    picture: chain.Picture
    username: str | None
    # Without a chosen user: every candidate's rules, and whom the certificate would sign on.
    decisions: tuple[trust.UserDecision, ...]
    would_sign_on: list[str]


def diagnose(cert, presented_chain=(), username: str | None = None, at: dt.datetime | None = None) -> Diagnosis:
    """Everything the doctor shows (on its page and in ``certs check``), judged exactly as sign-on judges."""
    at = at or timezone.now()
    verdict = verdicts.judge(cert, presented_chain, username=username, at=at)
    picture = chain.picture(cert, presented_chain, verdicts.trust_config(), verdict.connection, at)
    would = [verdict.authentication.user] if verdict.authentication.ok else []
    return Diagnosis(verdict, picture, username, verdict.authentication.decisions, would)


def known_chain(sha256s: list[str]) -> list:
    """Certificates the app stored (e.g. a chain presented at sign-on), by SHA-256, in order."""
    rows = {row.sha256: row for row in Certificate.objects.filter(sha256__in=sha256s)}
    return [rows[s].to_x509() for s in sha256s if s in rows]


# --- the stores ----------------------------------------------------------------------------------


@dataclass
class ApprovedCA:
    entry: StoreEntry
    connects: bool
    reason: str


def approved_cas() -> list[ApprovedCA]:
    """The approved-CA list, each with whether certificates it signs can connect at all (an
    approved CA that is not installed and chains up to nothing, the specification's "Verisign",
    approves certificates that still cannot connect)."""
    config, now = verdicts.trust_config(), timezone.now()
    found = []
    for entry in StoreEntry.objects.in_store(Store.APPROVED).order_by("certificate__subject_display", "id"):
        connection = trust.chains_to_root_store(entry.certificate.to_x509(), config, now)
        found.append(ApprovedCA(entry, connection.ok, connection.reason))
    return found


def dashboard() -> dict:
    """The administrator's overview in figures."""
    counts = dict.fromkeys(Store.values, 0)
    for store in StoreEntry.objects.values_list("store", flat=True):
        counts[store] += 1
    return {
        "users": User.objects.count(),
        "roots": counts[Store.ROOT],
        "intermediates": counts[Store.INTERMEDIATE],
        "approved": counts[Store.APPROVED],
        "org_tank": TankEntry.objects.filter(user__isnull=True).count(),
        "user_tank": TankEntry.objects.filter(user__isnull=False).count(),
        "org_ca": OrgCA.active(),
        "match_cn": verdicts.trust_config().match_cn,
        "expiring": expiring()[:25],
        "expiry_days": expiry_window_days(),
        "crls_attention": crls.needing_attention(),
    }


def entries_of(user: User) -> list[str]:
    """What of a user's is kept here, for the confirmation before deleting them."""
    lines = []
    entries = Credential.objects.filter(user=user)
    if entries:
        issued = entries.filter(source="issued").count()
        lines.append(
            f"{entries.count()} client certificate entr{'y' if entries.count() == 1 else 'ies'} on the profile"
            + (f" ({issued} issued by the org CA)" if issued else "")
            + "."
        )
    waiting = TankEntry.objects.filter(user=user).count()
    if waiting:
        lines.append(f"{waiting} holding-tank entr{'y' if waiting == 1 else 'ies'}.")
    return lines


# --- what a change would break -------------------------------------------------------------------

# At most this many known certificates are judged for a preview (the most recently seen first).
IMPACT_LIMIT = 5000


def _known_certificates(limit: int = IMPACT_LIMIT, user: User | None = None) -> list[KnownCertificate]:
    """Certificates on profiles, in holding tanks and seen at sign-on, each with its candidate
    users' profiles; with ``user``, only those that concern that user."""
    origins: dict[int, list[str]] = defaultdict(list)
    credentials = Credential.objects.filter(certificate__isnull=False).select_related("user")
    tank = TankEntry.objects.select_related("user")
    if user is not None:
        credentials, tank = credentials.filter(user=user), tank.filter(user=user)
    for credential in credentials[:limit]:
        origins[credential.certificate_id].append(f"on {credential.user.username}'s profile")
    for entry in tank[:limit]:
        origins[entry.certificate_id].append(f"in {entry.owner_phrase}")
    seen = _seen_at_sign_on(since=timezone.now() - dt.timedelta(days=90), limit=limit, user=user)
    by_sha = {row.sha256: row.pk for row in Certificate.objects.filter(sha256__in=list(seen))}
    for sha, pk in by_sha.items():
        origins[pk].append(f"seen at sign-on {seen[sha]} time{'s' if seen[sha] != 1 else ''}")
    known = []
    for row in Certificate.objects.filter(pk__in=list(origins)[:limit]):
        cert = row.to_x509()
        profiles = tuple(c.profile for c in verdicts.candidates(cert)[2].values())
        known.append(KnownCertificate(cert, profiles, origin="; ".join(dict.fromkeys(origins[row.pk]))))
    return known


def _seen_at_sign_on(since, limit, user=None) -> Counter:
    counts = Counter()
    events = AuditEvent.objects.filter(action__in=SIGN_ON_ACTIONS, at__gte=since)
    if user is not None:
        events = events.filter(target_user=user)
    for detail, repeats in events.values_list("detail", "repeats")[: limit * 10]:
        if detail and detail.get("sha256"):
            counts[detail["sha256"]] += 1 + repeats
    return counts


def impact_of_store_removal(store: str, row: Certificate) -> list[Consequence]:
    config = verdicts.trust_config()
    field_name = {Store.ROOT: "roots", Store.INTERMEDIATE: "intermediates", Store.APPROVED: "approved"}[store]
    target = row.to_x509()
    after = replace(config, **{field_name: tuple(c for c in getattr(config, field_name) if c != target)})
    return impact(_known_certificates(), config, after, timezone.now())


def impact_of_match_cn(on: bool) -> list[Consequence]:
    config = verdicts.trust_config()
    if config.match_cn == on:
        return []
    return impact(_known_certificates(), config, replace(config, match_cn=on), timezone.now())


@dataclass
class ModeChange:
    """What changing one user's sign-on mode on one interface would stop."""

    stops: list[str] = field(default_factory=list)
    certificates: list[Consequence] = field(default_factory=list)


def impact_of_mode_change(user: User, interface: str, mode: str) -> ModeChange:
    before, after = user.sign_on_mode(interface), SignOnMode(mode)
    change = ModeChange()
    if before == after:
        return change
    has_password = user.has_usable_password()
    loses_certificate = Method.CERTIFICATE in before.methods and Method.CERTIFICATE not in after.methods
    if Method.PASSWORD in before.methods and Method.PASSWORD not in after.methods and has_password:
        change.stops.append(f"{user.username} can no longer sign on with the password alone.")
    if loses_certificate:
        change.stops.append(f"{user.username}'s certificates no longer sign on alone.")
    if after == SignOnMode.PASSWORD:
        change.stops.append(f"Certificates play no part for {user.username} any more.")
    if after in (SignOnMode.CERT, SignOnMode.CERT_AND_PASSWORD) and not Credential.objects.filter(user=user).exists():
        change.stops.append(f"{user.username} has no certificate on the profile, so cannot sign on at all.")
    if after == SignOnMode.CERT_AND_PASSWORD and not has_password:
        change.stops.append(f"{user.username} has no password, so cannot sign on at all.")
    if loses_certificate:
        now, config = timezone.now(), verdicts.trust_config()
        for known in _known_certificates(user=user):
            connection = trust.connect(known.cert, (), config, now)
            if user.username in signed_on_users(known.cert, connection, config, known.profiles):
                change.certificates.append(
                    Consequence(
                        subject=display_name(known.cert.subject),
                        thumbprint=format_thumbprint(sha1_thumbprint(known.cert)),
                        sha256=sha256_fingerprint(known.cert),
                        origin=known.origin,
                        before=trust.AUTHENTICATES,
                        after=trust.AUTHENTICATES,
                        users_before=(user.username,),
                        users_after=(),
                        reason=f"{user.username}'s {interface.upper()} mode would be {mode}",
                    )
                )
    return change


# --- the overview --------------------------------------------------------------------------------


@dataclass
class OverviewRow:
    sha256: str
    subject: str
    thumbprint: str
    attempts: int
    last_seen: dt.datetime
    users: set[str]
    reason: str


@dataclass
class Overview:
    since: dt.datetime
    rows: dict[str, list[OverviewRow]]  # by category, most attempts first
    reasons: dict[str, list[tuple[str, int]]]  # the most common reasons per category

    def count(self, category: str) -> int:
        return len(self.rows.get(category, []))


def overview(days: int = 7, limit: int = 200_000) -> Overview:
    """The distinct certificates seen at sign-on in the last ``days``, by the specification's
    three categories (as each was judged the last time it was presented)."""
    since = timezone.now() - dt.timedelta(days=days)
    latest: dict[str, OverviewRow] = {}
    categories: dict[str, str] = {}
    events = (
        AuditEvent.objects.filter(action__in=SIGN_ON_ACTIONS, at__gte=since)
        .order_by("at", "id")
        .values_list("detail", "repeats", "at", "last_at", "target_name")
    )
    for detail, repeats, at, last_at, target in events[:limit]:
        if not detail or not detail.get("sha256") or not detail.get("category"):
            continue
        sha = detail["sha256"]
        reasons = [r for r in detail.get("reasons", []) if not r.startswith("Certificate: ")]
        row = latest.get(sha)
        if row is None:
            row = latest[sha] = OverviewRow(
                sha, detail.get("subject") or "", detail.get("thumbprint") or "", 0, at, set(), ""
            )
        row.attempts += 1 + (repeats or 0)
        row.last_seen = max(row.last_seen, last_at or at)
        if target and detail["category"] == trust.AUTHENTICATES:
            row.users.add(target)
        row.reason = _headline(detail["category"], reasons)
        categories[sha] = detail["category"]
    rows: dict[str, list[OverviewRow]] = {c: [] for c in trust.CATEGORY_TEXT}
    reasons: dict[str, Counter] = {c: Counter() for c in trust.CATEGORY_TEXT}
    for sha, row in latest.items():
        rows[categories[sha]].append(row)
        reasons[categories[sha]][row.reason] += 1
    for category in rows:
        rows[category].sort(key=lambda r: (-r.attempts, r.subject))
    return Overview(since, rows, {c: counter.most_common(5) for c, counter in reasons.items()})


def _headline(category: str, reasons: list[str]) -> str:
    """The one reason that explains the category best."""
    if category == trust.CANNOT_CONNECT:
        return next(
            (r for r in reasons if not r.startswith("The certificate cannot connect")), reasons[0] if reasons else ""
        )
    if category == trust.CONNECTS_ONLY:
        interesting = [r for r in reasons if "chains up" not in r and "is itself installed" not in r]
        return interesting[0] if interesting else ""
    return next((r for r in reasons if " is on " in r or "username" in r or "full name" in r), "")


# --- what expires --------------------------------------------------------------------------------


@dataclass
class Expiring:
    kind: str  # "profile", "root", "intermediate", "approved CA", "org CA"
    certificate: Certificate
    user: User | None = None

    @property
    def expired(self) -> bool:
        return self.certificate.is_expired

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "user": self.user.username if self.user else None,
            "expired": self.expired,
            **self.certificate.as_dict(),
        }


def expiry_window_days() -> int:
    return settings.MFT_EXPIRY_WARNING_DAYS


def expiring(days: int | None = None) -> list[Expiring]:
    """Certificates the app relies on that expire within ``days`` (or have expired)."""
    limit = expiry_cutoff(days)
    found = [
        Expiring("profile", credential.certificate, credential.user)
        for credential in Credential.objects.filter(kind=CredentialKind.THUMBPRINT, certificate__not_after__lte=limit)
        .select_related("certificate", "user")
        .order_by("certificate__not_after")
    ]
    for entry in StoreEntry.objects.filter(certificate__not_after__lte=limit).select_related("certificate"):
        found.append(Expiring(entry.store if entry.store != Store.APPROVED else "approved CA", entry.certificate))
    for org_ca in OrgCA.objects.filter(is_active=True, certificate__not_after__lte=limit).select_related("certificate"):
        found.append(Expiring("org CA", org_ca.certificate))
    return sorted(found, key=lambda e: (e.certificate.not_after, e.kind))


def own_expiring(user: User, presented=None) -> list[tuple[str, dt.datetime]]:
    """For an end user: (name, valid until) of their own certificates that expire soon or have
    expired: the one they presented, and those on their profile."""
    limit = expiry_cutoff()
    found = []
    if presented is not None and presented.not_valid_after_utc <= limit:
        found.append((display_name(presented.subject), presented.not_valid_after_utc))
    presented_sha256 = sha256_fingerprint(presented) if presented is not None else None
    for credential in Credential.objects.filter(user=user, certificate__not_after__lte=limit).select_related(
        "certificate"
    ):
        if credential.certificate.sha256 != presented_sha256:
            found.append((credential.certificate.subject_display, credential.certificate.not_after))
    return found


def mail_expiring(items: list[Expiring], days: int) -> int:
    """Mail the active administrators who have an address; returns how many were mailed."""
    recipients = list(
        User.objects.filter(is_admin=True, is_active=True).exclude(email="").values_list("email", flat=True)
    )
    if not items or not recipients:
        return 0
    lines = [f"{len(items)} certificate(s) the MFT service relies on expire within {days} days or have expired:", ""]
    for item in items:
        state = "EXPIRED" if item.expired else "expires"
        who = f" ({item.user.username}'s profile)" if item.user else ""
        lines.append(
            f"- {item.kind}{who}: {item.certificate.subject_display}, {state} {item.certificate.not_after:%Y-%m-%d}, "
            f"thumbprint {item.certificate.thumbprint}"
        )
    send_mail(
        f"[MFT] {len(items)} certificate(s) expiring within {days} days",
        "\n".join(lines) + "\n",
        settings.DEFAULT_FROM_EMAIL,
        recipients,
    )
    return len(recipients)
