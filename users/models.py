import datetime
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F
from django.utils import timezone

from certs.x509 import name_key


class Interface(models.TextChoices):
    HTTPS = "https", "HTTPS"
    FTPS = "ftps", "FTPS"


class SignOnMode(models.TextChoices):
    """How a user signs on through one interface.

    The specification's switches "client cert required" and "password also required with
    client cert", plus accepting a certificate without requiring it.
    """

    PASSWORD = "password", "Password only"
    CERT_OR_PASSWORD = "cert-or-password", "Client certificate or password"
    CERT = "cert", "Client certificate required"
    CERT_AND_PASSWORD = "cert-and-password", "Client certificate and password"


class InterfaceDefault(models.Model):
    """The sign-on mode a new user gets on one interface."""

    interface = models.CharField(max_length=8, choices=Interface.choices, unique=True)
    mode = models.CharField(max_length=20, choices=SignOnMode.choices, default=SignOnMode.PASSWORD)

    def __str__(self):
        return f"{self.get_interface_display()}: {self.get_mode_display()}"

    @classmethod
    def modes(cls) -> dict[str, str]:
        """The default mode per interface; interfaces without a row default to password."""
        found = dict(cls.objects.values_list("interface", "mode"))
        return {interface: found.get(interface, SignOnMode.PASSWORD) for interface in Interface.values}


class UserManager(BaseUserManager):
    use_in_migrations = True

    def get_by_natural_key(self, username):
        if "\x00" in (username or ""):
            raise self.model.DoesNotExist("No such user.")
        return self.get(username_key=name_key(username))

    def find(self, username: str):
        """The user with this username, compared as CNs are, or None."""
        if not username or "\x00" in username:  # no username holds NUL, and PostgreSQL refuses it
            return None
        return self.filter(username_key=name_key(username)).first()

    def create_user(self, username, password=None, *, full_name="", email="", is_admin=False, **extra):
        """Create a user with the org's default sign-on modes.

        Raises ``ValidationError`` with a readable message for a bad or taken username.
        """
        defaults = InterfaceDefault.modes()
        extra.setdefault("https_mode", defaults[Interface.HTTPS])
        extra.setdefault("ftps_mode", defaults[Interface.FTPS])
        user = self.model(
            username=(username or "").strip(),
            full_name=(full_name or "").strip(),
            email=self.normalize_email(email or ""),
            is_admin=is_admin,
            **extra,
        )
        # clean() reports a taken username in words; the database constraint backs it up.
        user.full_clean(exclude=["password"], validate_unique=False)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save(using=self._db)
        return user

    def create_superuser(self, username, password=None, **extra):
        extra.setdefault("is_admin", True)
        return self.create_user(username, password, **extra)


class User(AbstractBaseUser):
    """A person who signs on: an end user, or an administrator when ``is_admin`` is set.

    Usernames are unique as ``certs.x509.name_key`` compares them (case and surrounding or
    repeated white space ignored), the same comparison the CN rules use.
    """

    username = models.CharField(
        max_length=150,
        unique=True,
        validators=[UnicodeUsernameValidator()],
        help_text="Letters, digits and @ . + - _ only.",
    )
    # Keys are longer than what they key: case folding can lengthen a name (ß becomes ss).
    username_key = models.CharField(max_length=450, unique=True, editable=False)
    full_name = models.CharField(max_length=200, blank=True)
    full_name_key = models.CharField(max_length=600, blank=True, editable=False, db_index=True)
    email = models.EmailField(blank=True)
    is_active = models.BooleanField(default=True)
    is_admin = models.BooleanField(default=False)
    https_mode = models.CharField(max_length=20, choices=SignOnMode.choices, default=SignOnMode.PASSWORD)
    ftps_mode = models.CharField(max_length=20, choices=SignOnMode.choices, default=SignOnMode.PASSWORD)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "username"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = []

    class Meta:
        ordering = ["username_key"]

    def __str__(self):
        return self.username

    def clean(self):
        super().clean()
        self.username_key = name_key(self.username)
        self.full_name_key = name_key(self.full_name)
        others = User.objects.exclude(pk=self.pk)
        errors = {}
        if self.username_key and others.filter(username_key=self.username_key).exists():
            errors["username"] = f"The username '{self.username}' is already taken."
        elif self.username_key:
            # A certificate whose CN is this name would match two users under Match Cert CN.
            namesake = others.filter(full_name_key=self.username_key).first()
            if namesake is not None:
                errors["username"] = f"'{self.username}' is the full name of user '{namesake.username}'."
        if self.full_name_key and self.full_name_key != self.username_key:
            namesake = others.filter(username_key=self.full_name_key).first()
            if namesake is not None:
                errors["full_name"] = f"'{self.full_name}' is the username of another user."
        if errors:
            raise ValidationError(errors)

    def save(self, *args, **kwargs):
        self.username_key = name_key(self.username)
        self.full_name_key = name_key(self.full_name)
        super().save(*args, **kwargs)

    # Django's admin-style permission hooks, answered from the admin flag.
    @property
    def is_staff(self) -> bool:
        return self.is_admin

    @property
    def is_superuser(self) -> bool:
        return self.is_admin

    def has_perm(self, perm, obj=None) -> bool:
        return self.is_active and self.is_admin

    def has_perms(self, perms, obj=None) -> bool:
        return self.is_active and self.is_admin

    def has_module_perms(self, app_label) -> bool:
        return self.is_active and self.is_admin

    def get_full_name(self):
        return self.full_name or self.username

    def get_short_name(self):
        return self.username

    def sign_on_mode(self, interface: str) -> str:
        return self.https_mode if interface == Interface.HTTPS else self.ftps_mode


# Sign-on decisions that repeat (a script without a cookie jar signs on with every request)
# are folded into the first event of their kind: at most one row a minute per kind and
# process, whose ``repeats`` and ``last_at`` count the rest. Counts are written every few
# seconds; a crash loses at most those few seconds of counting, never the first event.
FOLD_WINDOW_SECONDS = 60.0
FOLD_FLUSH_SECONDS = 5.0
FOLD_MAX_KINDS = 10_000


@dataclass
class _Fold:
    event_id: int
    started: float
    flushed: float
    pending: int = 0
    last_at: datetime.datetime | None = None


_folds: "OrderedDict[tuple, _Fold]" = OrderedDict()
_folds_lock = threading.Lock()
_last_sweep = [0.0]


class AuditEventManager(models.Manager):
    def record(self, actor, action: str, summary: str, *, target=None, detail=None, source_address=None):
        """Write one audit event.

        ``actor`` is a User, or a string naming who acted when no user did (the command
        line, the sign-on engine).
        """
        actor_user = actor if isinstance(actor, User) else None
        return self.create(
            actor=actor_user,
            actor_name=str(actor) if actor is not None else "",
            action=action,
            summary=summary,
            target_user=target,
            target_name=target.username if target is not None else "",
            detail=detail or {},
            source_address=source_address or None,
        )

    def record_repeatable(self, fold_key: tuple, actor, action: str, summary: str, *, on_new=None, **fields):
        """Record an event, or count it against the same kind of event recorded moments ago.

        ``on_new`` is called before a new event is written (not for a counted repeat).
        """
        now = time.monotonic()
        due = []
        with _folds_lock:
            fold = _folds.get(fold_key)
            if fold is not None and now - fold.started < FOLD_WINDOW_SECONDS:
                fold.pending += 1
                fold.last_at = timezone.now()
                if now - fold.flushed >= FOLD_FLUSH_SECONDS:
                    due.append(self._take(fold, now))
                counted = True
            else:
                counted = False
                if fold is not None and fold.pending:
                    due.append(self._take(fold, now))
                _folds.pop(fold_key, None)
                while len(_folds) >= FOLD_MAX_KINDS:
                    _, oldest = _folds.popitem(last=False)
                    if oldest.pending:
                        due.append(self._take(oldest, now))
            if now - _last_sweep[0] >= FOLD_FLUSH_SECONDS:
                # Counts of other kinds are due too, even when their kind does not come again.
                _last_sweep[0] = now
                due.extend(
                    self._take(other, now)
                    for other in _folds.values()
                    if other.pending and now - other.flushed >= FOLD_FLUSH_SECONDS
                )
        self._write_counts(due)
        if counted:
            return None
        if on_new is not None:
            on_new()
        event = self.record(actor, action, summary, **fields)
        with _folds_lock:
            _folds[fold_key] = _Fold(event.pk, now, now)
        return event

    @staticmethod
    def _take(fold: _Fold, now: float) -> tuple[int, int, datetime.datetime]:
        counted = (fold.event_id, fold.pending, fold.last_at)
        fold.pending, fold.flushed = 0, now
        return counted

    def _write_counts(self, counts) -> None:
        for event_id, pending, last_at in counts:
            if not self.filter(pk=event_id).update(repeats=F("repeats") + pending, last_at=last_at):
                # The entry is gone (a retention clean-up): let the next of its kind start a new one.
                with _folds_lock:
                    for key in [k for k, fold in _folds.items() if fold.event_id == event_id]:
                        del _folds[key]

    def flush_repeats(self) -> None:
        """Write every pending count now (at exit, and in tests)."""
        now = time.monotonic()
        with _folds_lock:
            due = [self._take(fold, now) for fold in _folds.values() if fold.pending]
            _folds.clear()
        self._write_counts(due)


class AuditEvent(models.Model):
    """Who changed what, when and from where: every administrative change is recorded."""

    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor_name = models.CharField(max_length=200, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    summary = models.TextField()
    target_user = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events")
    target_name = models.CharField(max_length=150, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    source_address = models.GenericIPAddressField(null=True, blank=True)
    # The same sign-on decision again shortly after: how many more times, and the last time.
    repeats = models.PositiveIntegerField(default=0)
    last_at = models.DateTimeField(null=True, blank=True)

    objects = AuditEventManager()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["-at", "-id"], name="audit_newest_first"),
            models.Index(fields=["actor_name"], name="audit_actor"),
            models.Index(fields=["target_name"], name="audit_target"),
        ]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_name}: {self.summary}"
