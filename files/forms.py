"""The Files pages' forms: a path inside a home folder, a new folder's name, the transfers filter."""

from django import forms
from django.core.exceptions import ValidationError

from users.forms import AuditFilterForm
from users.models import Interface

from .homes import PathRefused, check_new_name, names


class PathField(forms.CharField):
    """A path inside a home folder, as names; '' (or nothing) is the home folder itself."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("max_length", 1024)
        kwargs.setdefault("strip", False)
        super().__init__(**kwargs)

    def to_python(self, value):
        try:
            return names(super().to_python(value) or "")
        except PathRefused as exc:
            raise ValidationError(str(exc)) from None


class PathForm(forms.Form):
    path = PathField()


class NewFolderForm(forms.Form):
    path = PathField(widget=forms.HiddenInput)
    name = forms.CharField(max_length=255, label="New folder", error_messages={"required": "Name the new folder."})

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        try:
            check_new_name(name)
        except PathRefused as exc:
            raise ValidationError(str(exc)) from None
        return name


class TransferFilterForm(AuditFilterForm):
    """The audit log's filter (a user, dates both included, page keys), with an interface
    instead of an action."""

    interface = forms.ChoiceField(
        required=False,
        choices=[("", "Either interface"), *Interface.choices],
        error_messages={"invalid_choice": "Choose HTTPS or FTPS."},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        del self.fields["action"]
        self.fields["user"].help_text = "Whose folder (the exact username)."
        self.order_fields(["user", "interface", "date_from", "date_to"])

    def filters(self) -> dict:
        data = self.cleaned_data
        return {
            "username": (data.get("user") or "").strip(),
            "interface": data.get("interface") or "",
            "date_from": data.get("date_from"),
            "date_to": data.get("date_to"),
        }
