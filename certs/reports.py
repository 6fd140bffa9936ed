"""Read-only use cases: the doctor's diagnosis, what a change would break, the sign-on overview
and what expires. Pages and commands call these; they change nothing (except mailing)."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace

from django.conf import settings
from django.core.mail import send_mail
from django.utils import timezone

from audit.models import AuditEvent
from users.models import SignOnMode, User

from . import doctor, flows, trust
from .models import Certificate, Credential, CredentialKind, OrgCA, Store, StoreEntry, TankEntry
from .x509 import display_name, format_thumbprint, sha1_thumbprint, sha256_fingerprint

# --- the doctor --------------------------------------------------------------------------------


@dataclass
class Diagnosis:
    verdict: trust.Verdict
    picture: doctor.Picture
    username: str | None
    # Without a chosen user: every candidate's rules, and whom the certificate would sign on.
    decisions: tuple[trust.UserDecision, ...]
    would_sign_on: list[str]
    certificate: Certificate | None = None


def diagnose(cert, chain=(), username: str | None = None, at: dt.datetime | None = None) -> Diagnosis:
    """Everything the doctor shows, judged exactly as sign-on judges."""
    at = at or timezone.now()
    verdict = flows.judge(cert, chain, username=username, at=at)
    config = flows.trust_config()
    picture = doctor.picture(cert, chain, config, verdict.connection, at)
    decisions = verdict.authentication.decisions
    would = [verdict.authentication.user] if verdict.authentication.ok else []
    return Diagnosis(verdict, picture, username, decisions, would)


def known_chain(sha256s: list[str]) -> list:
    """Certificates the app stored (e.g. a chain presented at sign-on), by SHA-256, in order."""
    rows = {row.sha256: row for row in Certificate.objects.filter(sha256__in=sha256s)}
    return [rows[s].to_x509() for s in sha256s if s in rows]


# --- what a change would break -------------------------------------------------------------------

# At most this many known certificates are judged for a preview (the most recently seen first).
IMPACT_LIMIT = 5000


def _known_certificates(limit: int = IMPACT_LIMIT, user: User | None = None) -> list[doctor.KnownCertificate]:
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
        owner = f"{entry.user.username}'s holding tank" if entry.user_id else "the org holding tank"
        origins[entry.certificate_id].append(f"in {owner}")
    seen = _seen_at_sign_on(since=timezone.now() - dt.timedelta(days=90), limit=limit, user=user)
    by_sha = {row.sha256: row.pk for row in Certificate.objects.filter(sha256__in=list(seen))}
    for sha, pk in by_sha.items():
        origins[pk].append(f"seen at sign-on {seen[sha]} time{'s' if seen[sha] != 1 else ''}")
    known = []
    for row in Certificate.objects.filter(pk__in=list(origins)[:limit]):
        cert = row.to_x509()
        profiles = tuple(flows.profile_of(u) for u in flows.candidates_for(cert)[2].values())
        known.append(doctor.KnownCertificate(cert, profiles, origin="; ".join(dict.fromkeys(origins[row.pk]))))
    return known


def _seen_at_sign_on(since, limit, user=None) -> Counter:
    counts = Counter()
    events = AuditEvent.objects.filter(action__in=["signon.success", "signon.refused"], at__gte=since)
    if user is not None:
        events = events.filter(target_user=user)
    for detail, repeats in events.values_list("detail", "repeats")[: limit * 10]:
        if detail and detail.get("sha256"):
            counts[detail["sha256"]] += 1 + repeats
    return counts


def impact_of_store_removal(store: str, row: Certificate) -> list[doctor.Consequence]:
    config = flows.trust_config()
    field_name = {Store.ROOT: "roots", Store.INTERMEDIATE: "intermediates", Store.APPROVED: "approved"}[store]
    target = row.to_x509()
    after = replace(config, **{field_name: tuple(c for c in getattr(config, field_name) if c != target)})
    return doctor.impact(_known_certificates(), config, after, timezone.now())


def impact_of_match_cn(on: bool) -> list[doctor.Consequence]:
    config = flows.trust_config()
    if config.match_cn == on:
        return []
    return doctor.impact(_known_certificates(), config, replace(config, match_cn=on), timezone.now())


@dataclass
class ModeChange:
    """What changing one user's sign-on mode on one interface would stop."""

    stops: list[str] = field(default_factory=list)
    certificates: list[doctor.Consequence] = field(default_factory=list)


def impact_of_mode_change(user: User, interface: str, mode: str) -> ModeChange:
    before = user.sign_on_mode(interface)
    allowed_before, allowed_after = flows.ALLOWED_METHODS[before], flows.ALLOWED_METHODS[mode]
    change = ModeChange()
    if before == mode:
        return change
    has_password = user.has_usable_password()
    if flows.METHOD_PASSWORD in allowed_before and flows.METHOD_PASSWORD not in allowed_after and has_password:
        change.stops.append(f"{user.username} can no longer sign on with the password alone.")
    if flows.METHOD_CERTIFICATE in allowed_before and flows.METHOD_CERTIFICATE not in allowed_after:
        change.stops.append(f"{user.username}'s certificates no longer sign on alone.")
    if mode == SignOnMode.PASSWORD and before != SignOnMode.PASSWORD:
        change.stops.append(f"Certificates play no part for {user.username} any more.")
    if (
        mode in (SignOnMode.CERT, SignOnMode.CERT_AND_PASSWORD)
        and mode != before
        and not Credential.objects.filter(user=user).exists()
    ):
        change.stops.append(f"{user.username} has no certificate on the profile, so cannot sign on at all.")
    if mode == SignOnMode.CERT_AND_PASSWORD and not has_password:
        change.stops.append(f"{user.username} has no password, so cannot sign on at all.")
    if flows.METHOD_CERTIFICATE in allowed_before and flows.METHOD_CERTIFICATE not in allowed_after:
        now = timezone.now()
        config = flows.trust_config()
        for known in _known_certificates(user=user):
            if any(p.username == user.username for p in known.profiles):
                connection = trust.connect(known.cert, (), config, now)
                if user.username in doctor.signed_on_users(known.cert, connection, config, known.profiles):
                    change.certificates.append(
                        doctor.Consequence(
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
        AuditEvent.objects.filter(action__in=["signon.success", "signon.refused"], at__gte=since)
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
    kind: str  # "profile", "root", "intermediate", "approved", "org CA"
    certificate: Certificate
    user: User | None = None

    @property
    def expired(self) -> bool:
        return self.certificate.not_after <= timezone.now()

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
    days = expiry_window_days() if days is None else days
    limit = timezone.now() + dt.timedelta(days=days)
    found = []
    for credential in (
        Credential.objects.filter(kind=CredentialKind.THUMBPRINT, certificate__not_after__lte=limit)
        .select_related("certificate", "user")
        .order_by("certificate__not_after")
    ):
        found.append(Expiring("profile", credential.certificate, credential.user))
    for entry in StoreEntry.objects.filter(certificate__not_after__lte=limit).select_related("certificate"):
        found.append(Expiring(entry.store if entry.store != Store.APPROVED else "approved CA", entry.certificate))
    for org_ca in OrgCA.objects.filter(is_active=True, certificate__not_after__lte=limit).select_related("certificate"):
        found.append(Expiring("org CA", org_ca.certificate))
    return sorted(found, key=lambda e: (e.certificate.not_after, e.kind))


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
