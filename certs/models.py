from datetime import timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, models
from django.db.models import F
from django.utils import timezone

from audit.models import AddedBy
from users.models import Interface

from .x509 import format_fingerprint, format_thumbprint, name_key, public_key_sha256, summarize


def entry_key(kind: str, value: str) -> str:
    """How a profile or holding-tank entry is compared: a CN by its ``name_key`` (which case
    folding can lengthen), a thumbprint as it is."""
    return name_key(value) if kind == "cn" else value


def expiry_cutoff(days: int | None = None):
    """Certificates valid until before this moment expire soon: within ``days``, by default
    ``MFT_EXPIRY_WARNING_DAYS``."""
    return timezone.now() + timedelta(days=settings.MFT_EXPIRY_WARNING_DAYS if days is None else days)


class CertificateManager(models.Manager):
    def store(self, cert: x509.Certificate) -> "Certificate":
        """The row for this certificate, created on first sight. Certificates are stored once."""
        summary = summarize(cert)
        row, _ = self.get_or_create(
            sha256=summary.sha256,
            defaults=dict(
                der=cert.public_bytes(serialization.Encoding.DER),
                sha1=summary.sha1,
                subject=summary.subject,
                issuer=summary.issuer,
                common_name=(summary.common_name or "")[:500],
                subject_display=summary.subject_display[:500],
                issuer_display=summary.issuer_display[:500],
                serial=summary.serial[:80],
                not_before=summary.not_before,
                not_after=summary.not_after,
                is_ca=summary.is_ca,
                self_signed=summary.self_signed,
                key_sha256=public_key_sha256(cert),
            ),
        )
        return row


class Certificate(models.Model):
    """A certificate the app knows: installed, approved, on a profile or seen at sign-on."""

    der = models.BinaryField()
    sha1 = models.CharField(max_length=40, db_index=True)
    sha256 = models.CharField(max_length=64, unique=True)
    subject = models.TextField()
    issuer = models.TextField()
    common_name = models.CharField(max_length=500, blank=True)
    subject_display = models.CharField(max_length=500)
    issuer_display = models.CharField(max_length=500)
    serial = models.CharField(max_length=80)
    not_before = models.DateTimeField()
    not_after = models.DateTimeField()
    is_ca = models.BooleanField(default=False)
    self_signed = models.BooleanField(default=False)
    # SHA-256 of the subject public key info: a renewal that keeps its key is found by it.
    key_sha256 = models.CharField(max_length=64, blank=True, db_index=True)
    first_seen = models.DateTimeField(auto_now_add=True)

    objects = CertificateManager()

    def __str__(self):
        return f"{self.subject_display} ({self.thumbprint})"

    def to_x509(self) -> x509.Certificate:
        return x509.load_der_x509_certificate(bytes(self.der))

    @property
    def pem(self) -> str:
        return self.to_x509().public_bytes(serialization.Encoding.PEM).decode()

    @property
    def thumbprint(self) -> str:
        return format_thumbprint(self.sha1)

    @property
    def fingerprint_sha256(self) -> str:
        return format_fingerprint(self.sha256)

    @property
    def is_expired(self) -> bool:
        return self.not_after <= timezone.now()

    @property
    def expires_soon(self) -> bool:
        return not self.is_expired and self.not_after <= expiry_cutoff()

    def as_dict(self) -> dict:
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "common_name": self.common_name or None,
            "thumbprint": self.thumbprint,
            "sha256": self.fingerprint_sha256,
            "serial": self.serial,
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "is_ca": self.is_ca,
            "self_signed": self.self_signed,
        }


class Store(models.TextChoices):
    ROOT = "root", "Trusted root store"
    INTERMEDIATE = "intermediate", "Intermediate CA pool"
    APPROVED = "approved", "Approved CA list"

    @property
    def phrase(self) -> str:
        """The store's name inside a sentence: "the trusted root store"."""
        return "the " + self.label[0].lower() + self.label[1:]


class StoreEntryQuerySet(models.QuerySet):
    def in_store(self, store: str):
        return self.filter(store=store).select_related("certificate", "added_by")


class StoreEntry(AddedBy):
    """A certificate in one of the org-level stores.

    The trusted root store holds certificates installed as trust anchors; the intermediate
    pool holds CA certificates used to build chains without being trusted; the approved-CA
    list holds the CAs whose certificates may authenticate by CN.
    """

    store = models.CharField(max_length=16, choices=Store.choices)
    certificate = models.ForeignKey(Certificate, on_delete=models.PROTECT, related_name="store_entries")

    objects = StoreEntryQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["store", "certificate"], name="unique_store_entry")]
        ordering = ["store", "certificate__subject_display"]

    def __str__(self):
        return f"{self.get_store_display()}: {self.certificate}"


class SelfRenewal(models.TextChoices):
    OFF = "off", "Off: administrators renew certificates"
    APPROVAL = "approval", "On request: the renewal waits in the holding tank for an administrator"
    AUTOMATIC = "automatic", "Automatic: the renewal replaces the old certificate at once"


class TrustSettings(models.Model):
    """Org-level switches, and a counter that changes whenever the trust configuration does.

    Every instance of the app reads ``generation`` to know when its cached configuration
    and verdicts are stale, so a change made through one instance applies at all of them.
    """

    match_cn = models.BooleanField(default=False, help_text="Match Cert CN to Username/Full Name")
    auto_accept_renewals = models.BooleanField(
        default=False,
        help_text="Accept renewals automatically: only while the old certificate is valid and its renewal's "
        "issuer is an approved CA",
    )
    self_renewal = models.CharField(
        max_length=16,
        choices=SelfRenewal.choices,
        default=SelfRenewal.OFF,
        help_text="Whether users renew certificates the org CA issued them, on their own page",
    )
    generation = models.PositiveBigIntegerField(default=1)

    class Meta:
        verbose_name_plural = "trust settings"

    def __str__(self):
        return f"Match CN {'on' if self.match_cn else 'off'}, generation {self.generation}"

    @classmethod
    def get(cls) -> "TrustSettings":
        row, _ = cls.objects.get_or_create(pk=1)
        return row

    @classmethod
    def current(cls) -> tuple[int, bool]:
        """(generation, match_cn), read on every sign-on: one small query, kept cheap."""
        with connection.cursor() as cursor:
            table = _q(cls._meta.db_table)
            cursor.execute(f"SELECT generation, match_cn FROM {table} WHERE id = 1")  # noqa: S608 - a quoted name
            row = cursor.fetchone()
        if row is None:
            settings_row = cls.get()
            return settings_row.generation, settings_row.match_cn
        return int(row[0]), bool(row[1])

    @classmethod
    def bump(cls) -> None:
        """Mark the trust configuration changed (call inside the changing transaction)."""
        cls.get()
        cls.objects.filter(pk=1).update(generation=F("generation") + 1)


class OrgCA(AddedBy):
    """The organisational CA that signs certificates the app creates.

    The private key is kept encrypted with the key-encryption key from settings and is
    never shown or exported. Rotation keeps earlier CAs, inactive, for the record.
    """

    certificate = models.ForeignKey(Certificate, on_delete=models.PROTECT, related_name="+")
    encrypted_key = models.BinaryField()
    is_active = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["is_active"], condition=models.Q(is_active=True), name="one_active_org_ca")
        ]
        verbose_name = "organisational CA"

    def __str__(self):
        return f"Org CA {self.certificate.subject_display}"

    @classmethod
    def active(cls):
        return cls.objects.filter(is_active=True).select_related("certificate").first()


class OrgCARevocation(AddedBy):
    """A certificate the org CA issued and an admin revoked: the org CA's CRL lists it.

    ``added_by`` and ``added_at`` say who revoked it and when (the revocation date)."""

    org_ca = models.ForeignKey(OrgCA, on_delete=models.PROTECT, related_name="revocations")
    certificate = models.OneToOneField(Certificate, on_delete=models.PROTECT, related_name="org_ca_revocation")
    reason = models.CharField(max_length=32, blank=True, help_text="A CRL reason code; blank: unspecified.")

    class Meta:
        verbose_name = "certificate revoked by the org CA"

    def __str__(self):
        return f"{self.certificate} revoked"


class CredentialKind(models.TextChoices):
    THUMBPRINT = "thumbprint", "Thumbprint"
    CN = "cn", "Common name (CN)"


class CredentialQuerySet(models.QuerySet):
    def matching(self, sha1: str, cn: str | None):
        """Credentials that could concern a certificate with this thumbprint and CN."""
        query = models.Q(kind=CredentialKind.THUMBPRINT, key=sha1)
        if cn is not None:
            query |= models.Q(kind=CredentialKind.CN, key=name_key(cn))
        return self.filter(query)

    def candidates(self, sha1: str, cn: str | None, username_key: str | None = None):
        """Everything sign-on reads, in one query: (generation, match_cn, users).

        The trust settings' generation and match-CN switch, with the users this certificate
        may concern: with ``username_key`` that user (if any), else the users with this
        thumbprint or CN on their profile. Each user has ``matched_kind`` and
        ``matched_key`` set (a user holding both entries comes twice). Sign-on runs this
        on every request that carries a certificate, so it is SQL: building the same through
        the ORM costs several times the query itself.
        """
        match, params = self._match_sql(sha1, cn)
        credentials, users = _q(self.model._meta.db_table), _q(_user_table())
        if username_key is None:
            joins = f"LEFT JOIN {credentials} c ON {match} LEFT JOIN {users} u ON u.id = c.user_id"
        else:
            joins = (
                f"LEFT JOIN {users} u ON u.username_key = %s "
                f"LEFT JOIN {credentials} c ON c.user_id = u.id AND ({match})"
            )
            params = [username_key, *params]
        sql = (
            "SELECT t.generation AS trust_generation, t.match_cn AS trust_match_cn, u.*, "  # noqa: S608 - names only
            f"c.kind AS matched_kind, c.{_q('key')} AS matched_key "
            f"FROM {_q(TrustSettings._meta.db_table)} t {joins} WHERE t.id = 1"
        )
        rows = list(get_user_model().objects.raw(sql, params))
        if not rows:  # the settings row is made by a migration; recreate it if someone removed it
            TrustSettings.get()
            return self.candidates(sha1, cn, username_key)
        return int(rows[0].trust_generation), bool(rows[0].trust_match_cn), [r for r in rows if r.pk is not None]

    @staticmethod
    def _match_sql(sha1: str, cn: str | None):
        where, params = "(c.kind = %s AND c.{key} = %s)", [CredentialKind.THUMBPRINT.value, sha1]
        if cn is not None:
            where += " OR (c.kind = %s AND c.{key} = %s)"
            params += [CredentialKind.CN.value, name_key(cn)]
        # An entry replaced by a renewal stops counting at its time, whether or not a cron run removed it.
        where = "(" + where + ") AND (c.remove_at IS NULL OR c.remove_at > %s)"
        params.append(timezone.now())
        return "(" + where.format(key=_q("key")) + ")", params

    def in_force(self):
        """Entries sign-on still reads: not replaced, or replaced but not yet due for removal."""
        return self.filter(models.Q(remove_at__isnull=True) | models.Q(remove_at__gt=timezone.now()))


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _user_table() -> str:
    return get_user_model()._meta.db_table


class Entry(models.Model):
    """A thumbprint or a CN, on a profile or in a holding tank: shown as entered, compared by key."""

    # As shown: a thumbprint in 40 hex digits, a CN as it was entered.
    value = models.CharField(max_length=500)
    # As compared: the thumbprint, or the CN's name_key (which case folding can lengthen).
    key = models.CharField(max_length=1000, editable=False)

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        self.key = entry_key(self.kind, self.value)
        super().save(*args, **kwargs)

    @property
    def shown_value(self) -> str:
        return self.value if self.kind == "cn" else format_thumbprint(self.value)

    @property
    def kind_phrase(self) -> str:
        """The kind inside a sentence: "thumbprint", "CN" or "certificate"."""
        return {"thumbprint": "thumbprint", "cn": "CN"}.get(self.kind, "certificate")


class Credential(AddedBy, Entry):
    """A thumbprint or CN accepted on a user's profile (the specification's "Accepted Certs")."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="credentials")
    kind = models.CharField(max_length=16, choices=CredentialKind.choices)
    certificate = models.ForeignKey(
        Certificate, null=True, blank=True, on_delete=models.SET_NULL, related_name="credentials"
    )
    source = models.CharField(max_length=32, blank=True, help_text="manual, import, issued, holding tank")
    # Replaced by a renewal: from this moment sign-on ignores the entry, and the expiry run removes it.
    remove_at = models.DateTimeField(null=True, blank=True)
    replaced_by = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replaces")

    objects = CredentialQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "kind", "key"], name="unique_credential")]
        indexes = [models.Index(fields=["kind", "key"], name="credential_lookup")]
        ordering = ["kind", "value"]

    def __str__(self):
        return f"{self.user}: {self.get_kind_display()} {self.shown_value}"

    def as_dict(self) -> dict:
        data = {
            "id": self.pk,
            "user": self.user.username,
            "kind": self.kind,
            "value": self.shown_value,
            "added_by": self.added_by_name or None,
            "added_at": self.added_at.isoformat(),
            "source": self.source,
            "certificate": self.certificate.as_dict() if self.certificate_id else None,
            "remove_at": self.remove_at.isoformat() if self.remove_at else None,
        }
        return data

    # Where a certificate the org CA signed comes from: Create New, self-service renewal, EST.
    ORG_CA_SOURCES = ("issued", "self-service renewal", "EST enrolment")

    @property
    def revocable(self) -> bool:
        """Whether the page offers Revoke: a certificate on the profile that the org CA issued
        (the revoke flow checks the signature itself and says so if it did not)."""
        return (
            self.kind == CredentialKind.THUMBPRINT
            and self.certificate_id is not None
            and self.source in self.ORG_CA_SOURCES
        )

    @property
    def retired(self) -> bool:
        """Replaced, and its time is up: sign-on ignores it (the expiry run removes it)."""
        return self.remove_at is not None and self.remove_at <= timezone.now()


class TankKind(models.TextChoices):
    THUMBPRINT = "thumbprint", "Thumbprint"
    CN = "cn", "Common name (CN)"
    CERTIFICATE = "certificate", "Certificate (no user named)"


class TankEntry(Entry):
    """A certificate presented at sign-on that nobody has accepted yet.

    In a user's tank there are two entries per certificate, one for its thumbprint and one
    for its CN, each to accept or remove. In the org tank (no user) there is one entry per
    certificate, to assign to a user by thumbprint or CN.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="tank_entries"
    )
    kind = models.CharField(max_length=16, choices=TankKind.choices)
    certificate = models.ForeignKey(Certificate, on_delete=models.CASCADE, related_name="tank_entries")
    interface = models.CharField(max_length=8, choices=Interface.choices, default=Interface.HTTPS)
    source_address = models.GenericIPAddressField(null=True, blank=True)
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now, db_index=True)
    attempts = models.PositiveIntegerField(default=1)
    # The profile entry this certificate looks like the renewal of (same issuer and subject, or
    # same key; newer validity), found when it was presented.
    renewal_of = models.ForeignKey(
        Credential, null=True, blank=True, on_delete=models.SET_NULL, related_name="renewals"
    )
    # What the revocation check found when it was last presented (empty: not checked).
    revocation = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "kind", "key"],
                condition=models.Q(user__isnull=False),
                name="unique_user_tank_entry",
            ),
            models.UniqueConstraint(
                fields=["kind", "key"], condition=models.Q(user__isnull=True), name="unique_org_tank_entry"
            ),
        ]
        ordering = ["-last_seen", "id"]
        verbose_name_plural = "tank entries"

    def __str__(self):
        owner = self.user.username if self.user_id else "org"
        return f"{owner}: {self.get_kind_display()} {self.shown_value}"

    @property
    def owner_phrase(self) -> str:
        """Whose tank, inside a sentence: "rich's holding tank" or "the org holding tank"."""
        return f"{self.user.username}'s holding tank" if self.user_id else "the org holding tank"

    def as_dict(self) -> dict:
        return {
            "id": self.pk,
            "user": self.user.username if self.user_id else None,
            "kind": self.kind,
            "value": self.shown_value,
            "subject": self.certificate.subject,
            "issuer": self.certificate.issuer,
            "thumbprint": self.certificate.thumbprint,
            "interface": self.interface,
            "source_address": self.source_address,
            "first_seen": self.first_seen.isoformat(),
            "last_seen": self.last_seen.isoformat(),
            "attempts": self.attempts,
            "renewal_of": renewal_as_dict(self.renewal_of) if self.renewal_of_id else None,
            "revocation": self.revocation or None,
        }

    @property
    def renewal_phrase(self) -> str:
        return renewal_phrase(self.renewal_of) if self.renewal_of_id else ""


def renewal_as_dict(credential: Credential) -> dict:
    return {
        "thumbprint": credential.certificate.thumbprint if credential.certificate_id else credential.shown_value,
        "username": credential.user.username,
        "kind": credential.kind,
        "not_after": credential.certificate.not_after.isoformat() if credential.certificate_id else None,
    }


def expiry_phrase(moment) -> str:
    """ "expires in 9 days", "expires today", "expired 3 days ago"."""
    now = timezone.now()
    if moment <= now:
        days = (now - moment).days
        return "expired today" if days == 0 else f"expired {days} day{'s' if days != 1 else ''} ago"
    days = (moment - now).days
    return "expires today" if days == 0 else f"expires in {days} day{'s' if days != 1 else ''}"


def renewal_phrase(credential: Credential) -> str:
    """ "renewal of 690B 5326 … (expires in 9 days), on rich's profile by thumbprint"."""
    old = credential.certificate
    when = f" ({expiry_phrase(old.not_after)})" if old is not None else ""
    shown = old.thumbprint if old is not None else credential.shown_value
    return f"renewal of {shown}{when}, on {credential.user.username}'s profile by {credential.kind_phrase}"


class ExpiryNotice(models.Model):
    """That a user was told (by mail) that a certificate on their profile expires: one row per
    threshold (30, 14, 7 or 1 days before), so that nobody is told twice for one threshold."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="expiry_notices")
    certificate = models.ForeignKey(Certificate, on_delete=models.CASCADE, related_name="expiry_notices")
    days = models.PositiveSmallIntegerField()
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "certificate", "days"], name="one_expiry_notice_per_threshold")
        ]

    def __str__(self):
        return f"{self.user}: {self.certificate} ({self.days} days)"


class Enrolment(AddedBy):
    """An administrator's approval for one first enrolment over EST (``simpleenroll``): the user's
    client authenticates with the one-time secret (only its SHA-256 is kept) and gets one
    certificate from the org CA, whose thumbprint lands on the profile."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="enrolments")
    secret_sha256 = models.CharField(max_length=64, unique=True)
    cn = models.CharField(max_length=64)
    days = models.PositiveIntegerField(default=365)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    certificate = models.ForeignKey(Certificate, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    def __str__(self):
        return f"Enrolment of {self.user} as '{self.cn}'"


# --- revocation ------------------------------------------------------------------------------


class RevocationCheck(models.TextChoices):
    OFF = "off", "Off"
    CRL = "crl", "CRL"
    OCSP = "ocsp", "OCSP"
    CRL_OCSP = "crl+ocsp", "CRL, then OCSP"


class WhenUnknown(models.TextChoices):
    REFUSE = "refuse", "Refuse"
    ALLOW = "allow", "Allow"


class RevocationPolicy(AddedBy):
    """How revocation is checked: the org default (no CA), or an override for one CA.

    ``added_by`` and ``added_at`` say who set it last and when.
    """

    ca = models.ForeignKey(Certificate, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    # The CA's SHA-1 thumbprint, or '' for the org default: one policy each.
    ca_sha1 = models.CharField(max_length=40, unique=True, blank=True)
    check_by = models.CharField(max_length=16, choices=RevocationCheck.choices, default=RevocationCheck.OFF)
    when_unknown = models.CharField(max_length=8, choices=WhenUnknown.choices, default=WhenUnknown.REFUSE)
    grace_hours = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name_plural = "revocation policies"

    def __str__(self):
        return f"{self.ca or 'org default'}: {self.check_by}"


class CompleteCrls(models.Manager):
    """The CRLs that count: not one still being loaded, nor one replaced or removed whose entries
    are still being deleted (``Crl.every`` has those too)."""

    def get_queryset(self):
        return super().get_queryset().filter(complete=True)


class Crl(AddedBy):
    """A certificate revocation list, stored only once a known CA's key verified its signature.

    Its revoked serials are rows of ``RevokedSerial``, so a lookup is an indexed query; the
    DER is kept for export. Scope is the issuing distribution point's limits, as JSON.
    ``complete`` is False while its entries are written, and once it was replaced or removed
    while they are deleted: then it counts for nothing (``Crl.objects`` leaves it out).
    """

    der = models.BinaryField()
    sha256 = models.CharField(max_length=64, unique=True)
    issuer = models.TextField()
    issuer_display = models.CharField(max_length=500)
    issuer_key = models.CharField(max_length=64, db_index=True)
    signer = models.ForeignKey(Certificate, on_delete=models.PROTECT, related_name="signed_crls")
    # CRL numbers may run to 20 octets: kept as decimal text.
    number = models.CharField(max_length=50, blank=True)
    delta_base = models.CharField(max_length=50, blank=True, help_text="Set for a delta CRL: its base CRL number.")
    this_update = models.DateTimeField()
    next_update = models.DateTimeField(null=True, blank=True)
    scope = models.JSONField(default=dict, blank=True)
    entry_count = models.PositiveIntegerField(default=0)
    # Where ``certs crls fetch`` got it ('' for an upload or the org CA's own).
    source_url = models.CharField(max_length=2000, blank=True)
    # A membership filter of its revoked serials (``serial_filter``), made when it is stored:
    # sign-on queries ``RevokedSerial`` only for a serial the filter may hold. Without a readable
    # one every lookup queries, until the upgrade or ``certs crls fetch`` builds it.
    serial_filter = models.BinaryField(null=True, blank=True, default=None, editable=False)
    complete = models.BooleanField(default=True)

    objects = CompleteCrls()
    every = models.Manager()

    class Meta:
        ordering = ["issuer_display", "id"]
        verbose_name = "CRL"
        base_manager_name = "every"

    def __str__(self):
        return f"CRL {self.pk} of {self.issuer_display}"

    @property
    def is_delta(self) -> bool:
        return bool(self.delta_base)

    @property
    def kind(self) -> str:
        return "delta" if self.is_delta else "full"


class RevokedSerial(models.Model):
    """One entry of a stored CRL. ``issuer_key`` is set only in an indirect CRL, for an entry about
    another CA's certificate; ``reason`` is the CRL reason code ('' when none is given)."""

    # Indexed by the lookup index below (crl first): no second index on a million rows.
    crl = models.ForeignKey(Crl, on_delete=models.CASCADE, related_name="+", db_index=False)
    serial = models.CharField(max_length=130)
    issuer_key = models.CharField(max_length=64, blank=True)
    revoked_at = models.DateTimeField()
    reason = models.CharField(max_length=32, blank=True)

    class Meta:
        indexes = [models.Index(fields=["crl", "serial"], name="revoked_serial_lookup")]

    def __str__(self):
        return f"{self.serial} on CRL {self.crl_id}"


class OcspResponse(models.Model):
    """An OCSP answer as its responder sent it (DER), kept until it goes stale so that every
    instance reuses it and a repeat decision does not ask the network. It is judged again
    (signature, certificate ID, freshness) each time it is used; only a verified, fresh answer
    is kept.
    """

    # The certificate ID (SHA-1 issuer name hash, issuer key hash, serial), as ``ocsp.cert_id_key``.
    cert_id = models.CharField(max_length=200, unique=True)
    responder = models.CharField(max_length=2000)
    der = models.BinaryField()
    status = models.CharField(max_length=8)
    this_update = models.DateTimeField()
    next_update = models.DateTimeField(null=True, blank=True)
    # When the answer stops counting: its next update.
    usable_until = models.DateTimeField(db_index=True)
    fetched_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "OCSP response"

    def __str__(self):
        return f"OCSP {self.status} for {self.cert_id} from {self.responder}"
