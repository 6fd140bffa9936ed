from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db import models
from django.utils import timezone

from audit.models import AddedBy
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

    @property
    def methods(self) -> frozenset[str]:
        """The ways of signing on (``Method``) that this mode allows."""
        return _ALLOWED_METHODS[self]


class Method(models.TextChoices):
    """How a session was signed on (``/api/whoami`` answers with these values)."""

    PASSWORD = "password", "your password"
    CERTIFICATE = "certificate", "your client certificate"
    BOTH = "certificate+password", "your client certificate and your password"


_ALLOWED_METHODS = {
    SignOnMode.PASSWORD: frozenset({Method.PASSWORD}),
    SignOnMode.CERT_OR_PASSWORD: frozenset({Method.PASSWORD, Method.CERTIFICATE, Method.BOTH}),
    SignOnMode.CERT: frozenset({Method.CERTIFICATE, Method.BOTH}),
    SignOnMode.CERT_AND_PASSWORD: frozenset({Method.BOTH}),
}


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


class NoSuchUser(ObjectDoesNotExist):
    """A username nobody has; the message says so in a sentence."""

    def __init__(self, username: str):
        super().__init__(f"There is no user '{username}'.")
        self.username = username


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

    def named(self, username: str):
        """The user with this username; raises ``NoSuchUser`` (with the sentence) when there is none."""
        user = self.find(username)
        if user is None:
            raise NoSuchUser(username)
        return user

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
        super().clean()  # normalises the username (NFKC), which can lengthen it
        self._check_normalised()
        self.username_key = name_key(self.username)
        self.full_name_key = name_key(self.full_name)
        # Names are what the Match Cert CN rule compares a certificate's CN with: no name may
        # belong to two users, or one certificate would name both.
        others = User.objects.exclude(pk=self.pk)
        errors = {}
        if self.username_key and others.filter(username_key=self.username_key).exists():
            errors["username"] = f"The username '{self.username}' is already taken."
        elif self.username_key:
            namesake = others.filter(full_name_key=self.username_key).first()
            if namesake is not None:
                errors["username"] = f"'{self.username}' is the full name of user '{namesake.username}'."
        if self.full_name_key and self.full_name_key != self.username_key:
            namesake = others.filter(username_key=self.full_name_key).first()
            if namesake is not None:
                errors["full_name"] = f"'{self.full_name}' is the username of user '{namesake.username}'."
            namesake = namesake or others.filter(full_name_key=self.full_name_key).first()
            if namesake is not None and "full_name" not in errors:
                errors["full_name"] = (
                    f"'{self.full_name}' is the full name of user '{namesake.username}' already: a certificate "
                    "with that name as its CN would name both users."
                )
        if errors:
            raise ValidationError(errors)

    def _check_normalised(self):
        """The username and full name as they will be stored: within their fields' limits after
        normalising (one character can become eighteen), and nothing the validators refuse."""
        errors = {}
        for field_name in ("username", "full_name"):
            field = self._meta.get_field(field_name)
            try:
                field.run_validators(getattr(self, field_name))
            except ValidationError as error:
                errors[field_name] = error.messages
            key_field = self._meta.get_field(f"{field_name}_key")
            if field_name not in errors and len(name_key(getattr(self, field_name))) > key_field.max_length:
                errors[field_name] = [f"The {field.verbose_name} is too long once normalised."]
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

    def sign_on_mode(self, interface: str) -> SignOnMode:
        return SignOnMode(self.https_mode if interface == Interface.HTTPS else self.ftps_mode)


class ApiToken(AddedBy):
    """A personal API token: a script acts as its user, with the user's rights and no more.

    Only a digest of the token is kept; the token itself is shown once, when it is made.
    ``key_id`` is the token's public part, by which it is found (then compared in constant time).
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    key_id = models.CharField(max_length=16, unique=True, editable=False)
    digest = models.CharField(max_length=64, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by_name = models.CharField(max_length=200, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_from = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-added_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "name"], condition=models.Q(revoked_at__isnull=True), name="unique_live_token_name"
            )
        ]

    def __str__(self):
        return f"{self.user}: API token '{self.name}'"

    @property
    def state(self) -> str:
        """ "active", "revoked" or "expired"."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= timezone.now():
            return "expired"
        return "active"
