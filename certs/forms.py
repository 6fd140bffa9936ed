"""Forms own validation and normalisation: they hand views clean values or a sentence per field."""

from django import forms
from django.urls import reverse_lazy

from users.models import NoSuchUser, User

from . import issuing
from . import revocation as rev
from .flows import RECORD_AS
from .loading import MAX_FILE_BYTES, CertificateLoadError, load_certificates
from .models import CredentialKind, RevocationCheck, Store, StoreEntry, WhenUnknown
from .x509 import MAX_CN_LENGTH, CNError, ThumbprintError, clean_cn, parse_thumbprint


class ConvertingField(forms.CharField):
    """Text that ``convert`` turns into the clean value; an ``errors`` exception's sentence
    becomes the field's error. Empty input cleans to ``empty``."""

    errors: tuple[type[Exception], ...] = ()
    empty = ""

    def convert(self, value: str):
        raise NotImplementedError

    def clean(self, value):
        value = super().clean(value)
        if value in self.empty_values:
            return self.empty
        try:
            return self.convert(value)
        except self.errors as exc:
            raise forms.ValidationError(str(exc)) from None


class CNField(ConvertingField):
    """A CN as a certificate would carry it: white space tidied, and refused in a sentence when no
    certificate could ever match it (``x509.clean_cn``, the rule every other path uses too)."""

    errors = (CNError,)

    def __init__(self, *, max_length=MAX_CN_LENGTH, **kwargs):
        kwargs.setdefault("label", "CN")
        # Longer input gets the field's own sentence, not a cut-off value.
        super().__init__(max_length=max_length * 4, **kwargs)
        self.cn_max_length = max_length

    def convert(self, value):
        cn = clean_cn(value)
        if len(cn) > self.cn_max_length:
            raise CNError(f"A CN here has at most {self.cn_max_length} characters; this one has {len(cn)}.")
        return cn


class ThumbprintField(ConvertingField):
    """A SHA-1 thumbprint in any common notation (3D17 CFF3 ..., 3d:17:cf:...), as 40 hex digits."""

    errors = (ThumbprintError,)

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 200)
        super().__init__(**kwargs)

    def convert(self, value):
        return parse_thumbprint(value)


class UserField(ConvertingField):
    """A username that must name a user; cleans to the User (or None when empty and optional)."""

    errors = (NoSuchUser,)
    empty = None

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 150)
        super().__init__(**kwargs)

    def convert(self, value):
        return User.objects.named(value)


class CertificateFileField(forms.FileField):
    """An uploaded certificate file, size-checked before it is read."""

    kind = "certificate"
    # What to do with a larger file, if there is a way ("" when there is none).
    larger = ""
    default_error_messages = {
        "required": "Choose a certificate file.",
        "empty": "The file is empty.",
    }

    def clean(self, data, initial=None):
        upload = super().clean(data, initial)
        if upload and upload.size > MAX_FILE_BYTES:
            raise forms.ValidationError(
                f"The file is {upload.size:,} bytes; {self.kind} files larger than {MAX_FILE_BYTES:,} bytes "
                f"are not accepted{self.larger}."
            )
        return upload


class CertificateUploadForm(forms.Form):
    """A certificate file in any format the app reads, with a password for PKCS#12."""

    file = CertificateFileField(
        label="Certificate file", help_text="PEM, DER (.cer/.crt/.der), PKCS#7 (.p7b/.p7c) or PKCS#12 (.pfx/.p12)."
    )
    password = forms.CharField(
        required=False, widget=forms.PasswordInput, strip=False, help_text="Only for PKCS#12 files."
    )

    def clean(self):
        cleaned = super().clean()
        upload = cleaned.get("file")
        if upload is None:
            return cleaned
        try:
            cleaned["certificates"] = load_certificates(
                upload.read(), cleaned.get("password") or None, filename=upload.name or ""
            )
        except CertificateLoadError as exc:
            self.add_error("file", str(exc))
        return cleaned


class ProfileImportForm(CertificateUploadForm):
    """Import from a file: which entries to record of each certificate (by thumbprint unless chosen)."""

    record_as = forms.ChoiceField(
        label="Record each certificate by",
        choices=[(key, text[0].upper() + text[1:]) for key, text in RECORD_AS.items()],
        widget=forms.RadioSelect,
        initial="thumbprint",
        required=False,
    )

    def clean_record_as(self):
        return self.cleaned_data["record_as"] or "thumbprint"


class ConfirmedCertificatesForm(forms.Form):
    """Certificates sent back from a confirmation page, as PEM (public data only)."""

    pem = forms.CharField(max_length=MAX_FILE_BYTES, widget=forms.HiddenInput)
    record_as = forms.ChoiceField(choices=[(key, key) for key in RECORD_AS], widget=forms.HiddenInput, required=False)

    def clean_record_as(self):
        return self.cleaned_data["record_as"] or "thumbprint"

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("pem"):
            try:
                cleaned["certificates"] = load_certificates(cleaned["pem"].encode())
            except CertificateLoadError as exc:
                self.add_error("pem", str(exc))
        return cleaned


class AddCredentialForm(forms.Form):
    """Add (manually): a thumbprint in any common notation, or a CN."""

    kind = forms.ChoiceField(
        choices=CredentialKind.choices, widget=forms.RadioSelect, initial=CredentialKind.THUMBPRINT
    )
    value = forms.CharField(
        max_length=MAX_CN_LENGTH * 4,
        strip=True,
        label="Thumbprint or CN",
        help_text="A thumbprint as 40 hex digits in any notation (3D17 CFF3 ..., 3d:17:cf:...), or a CN.",
    )

    def clean(self):
        cleaned = super().clean()
        kind, value = cleaned.get("kind"), cleaned.get("value")
        if not kind or value is None:
            return cleaned
        field = ThumbprintField() if kind == CredentialKind.THUMBPRINT else CNField()
        try:
            cleaned["value"] = field.clean(value)
        except forms.ValidationError as error:
            self.add_error("value", error)
        return cleaned


class CreateCertificateForm(forms.Form):
    """Create New: a certificate for the user, signed by the org CA."""

    cn = CNField(max_length=64, help_text="The name in the certificate; defaults to the username.")
    key_type = forms.ChoiceField(label="Key type", choices=list(issuing.KEY_TYPES.items()), initial="ec-p256")
    days = forms.IntegerField(label="Valid for (days)", min_value=1, max_value=issuing.MAX_CLIENT_DAYS, initial=365)
    pkcs12_format = forms.ChoiceField(
        label="PKCS#12 encryption",
        choices=list(issuing.PKCS12_FORMATS.items()),
        initial="modern",
        required=False,
        help_text=issuing.PKCS12_WHICH,
    )
    # On the page, good for one submission: posting the same form again (a reload) issues
    # nothing more. (The API has idempotency keys instead.)
    once = forms.CharField(widget=forms.HiddenInput, max_length=40, required=False)

    def clean_pkcs12_format(self):
        return self.cleaned_data.get("pkcs12_format") or "modern"


class OrgCACreateForm(forms.Form):
    cn = CNField(max_length=64, initial="MFT Organisational CA")
    key_type = forms.ChoiceField(label="Key type", choices=list(issuing.KEY_TYPES.items()), initial="ec-p256")
    days = forms.IntegerField(label="Valid for (days)", min_value=30, max_value=issuing.MAX_CA_DAYS, initial=3650)


class OrgCAImportForm(forms.Form):
    """An existing CA's certificate and private key, as a PKCS#12 file."""

    def __init__(self, *args, **kwargs):
        # It shares its page with the approved-CA upload, whose fields have the same names.
        kwargs.setdefault("auto_id", "id_org_ca_%s")
        super().__init__(*args, **kwargs)

    file = CertificateFileField(label="PKCS#12 file", help_text="The CA certificate with its private key (.pfx/.p12).")
    password = forms.CharField(required=False, widget=forms.PasswordInput, strip=False)

    def clean(self):
        cleaned = super().clean()
        upload = cleaned.get("file")
        if upload is None:
            return cleaned
        try:
            cleaned["ca"] = issuing.load_ca_pkcs12(upload.read(), cleaned.get("password") or "")
        except issuing.IssuingError as exc:
            self.add_error("file", str(exc))
        return cleaned


class ApproveFromRootForm(forms.Form):
    entry = forms.ModelChoiceField(
        queryset=StoreEntry.objects.none(),
        label="CA in the trusted root store",
        empty_label=None,
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        approved = StoreEntry.objects.filter(store=Store.APPROVED).values("certificate_id")
        self.fields["entry"].queryset = (
            StoreEntry.objects.in_store(Store.ROOT).filter(certificate__is_ca=True).exclude(certificate_id__in=approved)
        )
        self.fields["entry"].label_from_instance = lambda e: (
            f"{e.certificate.subject_display} ({e.certificate.thumbprint})"
        )


class MatchCNForm(forms.Form):
    match_cn = forms.BooleanField(
        required=False,
        label="Match Cert CN to Username/Full Name",
        help_text="A certificate whose CN is a user's username or full name, signed by an approved CA, "
        "authenticates that user.",
    )


class AssignTankEntryForm(forms.Form):
    """Assign an org holding-tank entry to a user."""

    username = UserField(
        label="User",
        help_text="Type a few letters of the username or full name to choose.",
        widget=forms.TextInput(
            attrs={"list": "user-suggestions", "autocomplete": "off", "data-suggest": reverse_lazy("users:suggest")}
        ),
    )
    as_kind = forms.ChoiceField(
        label="Assign by", choices=CredentialKind.choices, widget=forms.RadioSelect, initial=CredentialKind.THUMBPRINT
    )


class DoctorForm(forms.Form):
    """A certificate to examine (a file, or pasted), its chain if any, and optionally a user."""

    file = CertificateFileField(label="Certificate file", required=False)
    pasted = forms.CharField(
        label="…or paste it",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "class": "mono"}),
        help_text="PEM, or base64 of the DER. The first certificate is examined; any others count as its chain.",
    )
    chain_file = CertificateFileField(label="Chain file (optional)", required=False)
    password = forms.CharField(required=False, widget=forms.PasswordInput, strip=False, help_text="For PKCS#12 files.")
    username = UserField(
        label="User (optional)",
        required=False,
        help_text="Judge for this user, as when the username is given at sign-on. Empty: find the user.",
    )

    def clean(self):
        cleaned = super().clean()
        password = cleaned.get("password") or None
        upload, pasted = cleaned.get("file"), (cleaned.get("pasted") or "").strip()
        if upload is None and not pasted:
            if not self.errors:
                self.add_error("file", "Choose a certificate file or paste a certificate.")
            return cleaned
        try:
            if upload is not None:
                certs = load_certificates(upload.read(), password, filename=upload.name or "")
            else:
                certs = load_certificates(pasted.encode(), password)
        except CertificateLoadError as exc:
            self.add_error("file" if upload is not None else "pasted", str(exc))
            return cleaned
        chain = list(certs[1:])
        if cleaned.get("chain_file") is not None:
            try:
                chain += load_certificates(cleaned["chain_file"].read(), password, filename=cleaned["chain_file"].name)
            except CertificateLoadError as exc:
                self.add_error("chain_file", str(exc))
        cleaned["certificate"], cleaned["chain"] = certs[0], chain
        return cleaned


class SelfRenewForm(forms.Form):
    """A user renewing their own certificate: for the key in their request, or for a new key."""

    how = forms.ChoiceField(
        label="The new key",
        choices=[
            ("generate", "Make a new key for me (a PKCS#12 file, its password shown once)"),
            ("csr", "I send a certificate signing request (my key stays with me)"),
        ],
        initial="generate",
        widget=forms.RadioSelect,
    )
    csr_file = forms.FileField(label="Request file (.csr, .req)", required=False)
    csr_text = forms.CharField(
        label="…or paste the request",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "class": "mono"}),
        help_text="PEM: -----BEGIN CERTIFICATE REQUEST-----",
    )
    key_type = forms.ChoiceField(label="Key type", choices=list(issuing.KEY_TYPES.items()), initial="ec-p256")
    pkcs12_format = forms.ChoiceField(
        label="PKCS#12 encryption",
        choices=list(issuing.PKCS12_FORMATS.items()),
        initial="modern",
        help_text=issuing.PKCS12_WHICH,
    )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("how") != "csr":
            cleaned["csr"] = None
            return cleaned
        upload, text = cleaned.get("csr_file"), cleaned.get("csr_text") or ""
        if upload is not None:
            if upload.size > issuing.MAX_CSR_BYTES:
                raise forms.ValidationError(
                    f"The request file is {upload.size:,} bytes; a signing request is at most "
                    f"{issuing.MAX_CSR_BYTES:,} bytes."
                )
            data = upload.read()
        else:
            data = text.encode()
        if not data.strip():
            raise forms.ValidationError("Choose the request file, or paste the request.")
        cleaned["csr"] = data
        return cleaned


class CrlFileField(CertificateFileField):
    """An uploaded CRL file, size-checked before it is read (the API's upload limit too; the
    command line takes larger ones)."""

    kind = "CRL"
    larger = " here: add it with manage.py certs crls add FILE, or let manage.py certs crls fetch get it"
    default_error_messages = {"required": "Choose a CRL file."}


class CrlUploadForm(forms.Form):
    file = CrlFileField(
        label="CRL file",
        help_text="DER (.crl) or PEM, full or delta; a PEM file may hold several CRLs, and the certificate of a "
        "separate CRL signer beside them.",
    )


class RevocationPolicyForm(forms.Form):
    """How revocation is checked: by what, what happens when the status is unknown, the grace."""

    check = forms.ChoiceField(label="Check revocation", choices=RevocationCheck.choices)
    when_unknown = forms.ChoiceField(
        label="When the status is unknown",
        choices=WhenUnknown.choices,
        help_text="Unknown: no fresh CRL of the CA is stored, or its OCSP responder cannot be reached.",
    )
    grace_hours = forms.IntegerField(
        label="Grace (hours)",
        min_value=0,
        max_value=rev.MAX_GRACE_HOURS,
        help_text="How long past its next update a CRL is still used.",
    )


class CaPolicyForm(RevocationPolicyForm):
    """A policy of its own for one CA in the root store, the intermediate pool or the approved list."""

    ca = forms.ChoiceField(label="CA")

    field_order = ["ca", "check", "when_unknown", "grace_hours"]

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "id_ca_%s")  # it shares its page with the org default's form
        super().__init__(*args, **kwargs)
        where: dict = {}
        for entry in StoreEntry.objects.filter(certificate__is_ca=True).select_related("certificate"):
            where.setdefault(entry.certificate, []).append(Store(entry.store).phrase)
        self.fields["ca"].choices = [
            (cert.sha1, f"{cert.subject_display} ({cert.thumbprint}), in {' and '.join(sorted(places))}")
            for cert, places in sorted(where.items(), key=lambda item: (item[0].subject_display, item[0].sha1))
        ]
