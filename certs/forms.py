"""Forms own validation and normalisation: they hand views clean values or a sentence per field."""

from django import forms
from django.contrib.auth import authenticate
from django.contrib.auth.forms import AuthenticationForm

from users.models import User

from . import issuing
from .models import CredentialKind, Store, StoreEntry
from .x509 import MAX_FILE_BYTES, CertificateLoadError, ThumbprintError, load_certificates, parse_thumbprint


class CertificateFileField(forms.FileField):
    """An uploaded certificate file, size-checked before it is read."""

    default_error_messages = {
        "required": "Choose a certificate file.",
        "empty": "The file is empty.",
    }

    def clean(self, data, initial=None):
        upload = super().clean(data, initial)
        if upload and upload.size > MAX_FILE_BYTES:
            raise forms.ValidationError(
                f"The file is {upload.size:,} bytes; certificate files larger than {MAX_FILE_BYTES:,} bytes "
                "are not accepted."
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


class AddCredentialForm(forms.Form):
    """Add (manually): a thumbprint in any common notation, or a CN."""

    kind = forms.ChoiceField(
        choices=CredentialKind.choices, widget=forms.RadioSelect, initial=CredentialKind.THUMBPRINT
    )
    value = forms.CharField(
        max_length=500,
        strip=True,
        label="Thumbprint or CN",
        help_text="A thumbprint as 40 hex digits in any notation (3D17 CFF3 ..., 3d:17:cf:...), or a CN.",
    )

    def clean(self):
        cleaned = super().clean()
        kind, value = cleaned.get("kind"), cleaned.get("value")
        if not kind or value is None:
            return cleaned
        if kind == CredentialKind.THUMBPRINT:
            try:
                cleaned["value"] = parse_thumbprint(value)
            except ThumbprintError as exc:
                self.add_error("value", str(exc))
        else:
            cn = " ".join(value.split())
            if not cn:
                self.add_error("value", "Enter a CN.")
            elif any(ord(c) < 32 for c in cn):
                self.add_error("value", "A CN cannot contain control characters.")
            cleaned["value"] = cn
        return cleaned


class CreateCertificateForm(forms.Form):
    """Create New: a certificate for the user, signed by the org CA."""

    cn = forms.CharField(label="CN", max_length=64, help_text="The name in the certificate; defaults to the username.")
    key_type = forms.ChoiceField(label="Key type", choices=list(issuing.KEY_TYPES.items()), initial="ec-p256")
    days = forms.IntegerField(label="Valid for (days)", min_value=1, max_value=issuing.MAX_CLIENT_DAYS, initial=365)

    def clean_cn(self):
        cn = " ".join(self.cleaned_data["cn"].split())
        if not cn:
            raise forms.ValidationError("Enter a CN.")
        if any(ord(c) < 32 for c in cn):
            raise forms.ValidationError("A CN cannot contain control characters.")
        return cn


class OrgCACreateForm(forms.Form):
    cn = forms.CharField(label="CN", max_length=64, initial="MFT Organisational CA")
    key_type = forms.ChoiceField(label="Key type", choices=list(issuing.KEY_TYPES.items()), initial="ec-p256")
    days = forms.IntegerField(label="Valid for (days)", min_value=30, max_value=issuing.MAX_CA_DAYS, initial=3650)


class OrgCAImportForm(forms.Form):
    """An existing CA's certificate and private key, as a PKCS#12 file."""

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

    username = forms.CharField(max_length=150)
    as_kind = forms.ChoiceField(
        label="Assign by", choices=CredentialKind.choices, widget=forms.RadioSelect, initial=CredentialKind.THUMBPRINT
    )

    def clean_username(self):
        user = User.objects.find(self.cleaned_data["username"])
        if user is None:
            raise forms.ValidationError(f"There is no user '{self.cleaned_data['username']}'.")
        return user


class SignOnForm(AuthenticationForm):
    """Username and password, where the password is needed only by some sign-on modes.

    A refusal is one generic message, as the specification's product gives: it does not
    say which condition failed. The audit log has the reasons.
    """

    error_messages = {
        "invalid_login": "Sign-on failed. Check your username, your password and your client certificate.",
        "inactive": "Sign-on failed. Check your username, your password and your client certificate.",
    }

    def __init__(self, request=None, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        self.fields["password"].required = False
        self.fields["password"].help_text = "Not needed when your client certificate alone signs you on."

    def clean(self):
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username:
            self.user_cache = authenticate(self.request, username=username, password=password or None)
            if self.user_cache is None:
                raise self.get_invalid_login_error()
            self.confirm_login_allowed(self.user_cache)
        return self.cleaned_data


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
    username = forms.CharField(
        label="User (optional)",
        required=False,
        max_length=150,
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
        username = (cleaned.get("username") or "").strip()
        if username and User.objects.find(username) is None:
            self.add_error("username", f"There is no user '{username}'.")
        cleaned["username"] = username or None
        return cleaned
