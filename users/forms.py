"""Forms own validation and normalisation: views get clean values, or a sentence per field."""

import datetime as dt

from django import forms
from django.contrib.auth.forms import SetPasswordForm, SetPasswordMixin
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError

from audit.models import action_label

from .flows import interface_defaults
from .models import Interface, SignOnMode, User

MODE_EXPLANATIONS = {
    SignOnMode.PASSWORD: "the password signs on; certificates play no part.",
    SignOnMode.CERT_OR_PASSWORD: "a client certificate that authenticates the user, or the password, signs on.",
    SignOnMode.CERT: "a client certificate that authenticates the user is required; no password is asked for.",
    SignOnMode.CERT_AND_PASSWORD: "a client certificate that authenticates the user and the password are both "
    "required.",
}

MODE_ERRORS = {
    "required": "Choose a sign-on mode.",
    "invalid_choice": "'%(value)s' is not a sign-on mode; choose one of the modes listed.",
}


class FlowErrorsMixin:
    def add_flow_error(self, error: ValidationError) -> None:
        """Put a use case's ValidationError on the form: on its field when the form has that field."""
        if hasattr(error, "error_dict"):
            for name, errors in error.error_dict.items():
                self.add_error(name if name in self.fields else None, errors)
        else:
            self.add_error(None, error)


_KEY_LENGTH = User._meta.get_field("username_key").max_length


class UserSearchForm(forms.Form):
    q = forms.CharField(required=False, max_length=200, label="Search")
    after = forms.CharField(required=False, max_length=_KEY_LENGTH, strip=False)
    before = forms.CharField(required=False, max_length=_KEY_LENGTH, strip=False)

    def clean(self):
        data = super().clean()
        if data.get("after") and data.get("before"):
            raise ValidationError("This page link asks for two pages at once; start again from the first page.")
        return data


class CreateUserForm(FlowErrorsMixin, SetPasswordMixin, forms.Form):
    username = forms.CharField(
        max_length=150,
        help_text="Letters, digits and @ . + - _ only; no spaces. Compared without regard to case.",
        validators=[
            UnicodeUsernameValidator(
                message="A username may contain only letters, digits and the characters @ . + - _ (no spaces)."
            )
        ],
        error_messages={"required": "Enter a username."},
    )
    full_name = forms.CharField(max_length=200, required=False)
    email = forms.EmailField(
        required=False, max_length=254, error_messages={"invalid": "Enter an email address such as name@example.com."}
    )
    is_admin = forms.BooleanField(
        required=False,
        label="Administrator",
        help_text="May sign in to these pages and change users, policies and trusted CAs.",
    )
    password1, password2 = SetPasswordMixin.create_password_fields(label1="Password", label2="Password again")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["password1"].required = False
        self.fields["password2"].required = False
        self.fields["password2"].help_text = (
            "Enter the same password again. Leave both empty to create the user without a password "
            "(they sign on with a certificate, or you set a password later)."
        )

    def clean_username(self):
        username = self.cleaned_data["username"]
        if set(username) <= {"."}:
            # A path segment of '.' or '..' is rewritten by browsers, so the profile could not be reached.
            raise ValidationError("A username cannot consist of dots only.")
        return username

    def clean(self):
        data = super().clean()
        first, second = data.get("password1"), data.get("password2")
        if first or second:
            if not (first and second):
                self.add_error("password2", "Enter the password twice, or leave both boxes empty.")
            else:
                self.validate_passwords()
                if "password2" not in self.errors:
                    candidate = User(
                        username=data.get("username", ""), full_name=data.get("full_name", ""), email=data.get("email")
                    )
                    self.validate_password_for_user(candidate)
        return data


class EditUserForm(FlowErrorsMixin, forms.Form):
    full_name = forms.CharField(max_length=200, required=False)
    email = forms.EmailField(
        required=False, max_length=254, error_messages={"invalid": "Enter an email address such as name@example.com."}
    )
    is_active = forms.BooleanField(required=False, label="Active", help_text="An inactive user cannot sign on.")
    is_admin = forms.BooleanField(
        required=False,
        label="Administrator",
        help_text="May sign in to these pages and change users, policies and trusted CAs.",
    )

    @classmethod
    def initial_for(cls, user: User) -> dict:
        return {name: getattr(user, name) for name in cls.base_fields}


class PasswordForm(SetPasswordForm):
    """Django's own set-password form: the two entries must match and pass the password validators."""

    def __init__(self, user, *args, **kwargs):
        super().__init__(user, *args, **kwargs)
        self.fields["new_password1"].label = "New password"
        self.fields["new_password2"].label = "New password again"
        self.fields["new_password2"].help_text = "Enter the same password again."


class PolicyForm(forms.Form):
    mode = forms.ChoiceField(
        label="Sign-on mode",
        widget=forms.RadioSelect,
        choices=[(mode.value, f"{mode.label}: {MODE_EXPLANATIONS[mode]}") for mode in SignOnMode],
        error_messages=MODE_ERRORS,
    )


class DefaultsForm(forms.Form):
    https_mode = forms.ChoiceField(
        label="HTTPS",
        choices=SignOnMode.choices,
        error_messages=MODE_ERRORS,
        help_text="The sign-on mode a new user gets for HTTPS.",
    )
    ftps_mode = forms.ChoiceField(
        label="FTPS",
        choices=SignOnMode.choices,
        error_messages=MODE_ERRORS,
        help_text="The sign-on mode a new user gets for FTPS.",
    )

    @staticmethod
    def initial_now() -> dict:
        return {f"{interface}_mode": mode for interface, mode in interface_defaults().items()}

    def modes(self) -> dict[str, str]:
        return {interface: self.cleaned_data[f"{interface}_mode"] for interface in Interface.values}


class ApplyDefaultsForm(forms.Form):
    """The confirmation: carries the defaults the administrator saw, so a change made meanwhile is not
    applied unseen."""

    https_mode = forms.CharField(required=False, widget=forms.HiddenInput)
    ftps_mode = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean(self):
        data = super().clean()
        seen = {interface: data.get(f"{interface}_mode") for interface in Interface.values}
        if seen != interface_defaults():
            raise ValidationError(
                "The defaults changed while this page was open; check the figures below and confirm again."
            )
        return data


# --- API tokens ---------------------------------------------------------------------------------


class TokenForm(FlowErrorsMixin, forms.Form):
    name = forms.CharField(
        max_length=100, help_text="What the token is for, e.g. the script that will use it.", strip=True
    )
    expires_days = forms.TypedChoiceField(
        label="Expires",
        choices=[("30", "in 30 days"), ("90", "in 90 days"), ("365", "in a year"), ("", "never")],
        coerce=int,
        empty_value=None,
        required=False,
        initial="90",
    )


# --- audit log ---------------------------------------------------------------------------------

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def event_key_text(key: tuple) -> str:
    """An (at, id) page key as it travels in a link: microseconds since 1970, a dot, the id."""
    at, pk = key
    micros = (at - _EPOCH) // dt.timedelta(microseconds=1)
    return f"{micros}.{pk}"


def _event_key(text: str):
    if not text:
        return None
    try:
        micros, pk = text.split(".")
        return _EPOCH + dt.timedelta(microseconds=int(micros)), int(pk)
    except (ValueError, OverflowError):
        raise ValidationError("This page link is not valid; start again from the first page.") from None


class AuditFilterForm(forms.Form):
    user = forms.CharField(
        required=False, max_length=150, label="User", help_text="Who acted, or whom the change was about."
    )
    action = forms.ChoiceField(
        required=False,
        error_messages={
            "invalid_choice": "There are no '%(value)s' events in the log; choose an action from the list."
        },
    )
    date_from = forms.DateField(
        required=False,
        label="From",
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={"invalid": "Enter a date such as 2025-01-31."},
    )
    date_to = forms.DateField(
        required=False,
        label="To",
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={"invalid": "Enter a date such as 2025-01-31."},
        help_text="Both dates are included.",
    )
    after = forms.CharField(required=False, max_length=40, widget=forms.HiddenInput)
    before = forms.CharField(required=False, max_length=40, widget=forms.HiddenInput)

    def __init__(self, *args, actions=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["action"].choices = [("", "Any action")] + [(action, action_label(action)) for action in actions]

    def clean_after(self):
        return _event_key(self.cleaned_data["after"])

    def clean_before(self):
        return _event_key(self.cleaned_data["before"])

    def clean(self):
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "The end date is before the start date.")
        if data.get("after") and data.get("before"):
            raise ValidationError("This page link asks for two pages at once; start again from the first page.")
        return data

    def filters(self) -> dict:
        return {
            "username": self.cleaned_data["user"],
            "action": self.cleaned_data["action"],
            "date_from": self.cleaned_data["date_from"],
            "date_to": self.cleaned_data["date_to"],
        }
