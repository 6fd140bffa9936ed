from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from users.models import Interface
from users.pages import client_address

from . import flows


class SignOnForm(AuthenticationForm):
    """Username and password, where the password is needed only by some sign-on modes.

    A refusal is one generic message, as the specification's product gives: it does not
    say which condition failed. The audit log has the reasons. A valid form holds the
    ``decision``, from which the view starts the session.
    """

    error_messages = {
        "invalid_login": "Sign-on failed. Check your username, your password and your client certificate.",
        "inactive": "Sign-on failed. Check your username, your password and your client certificate.",
    }

    def __init__(self, request=None, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        self.fields["password"].required = False
        self.fields["password"].help_text = "Not needed when your client certificate alone signs you on."
        self.decision = None

    def clean(self):
        username = (self.cleaned_data.get("username") or "").strip()
        password = self.cleaned_data.get("password")
        if username:
            self.decision = flows.sign_on(
                self.request.client_certificate,
                username=username,
                password=password or None,
                interface=Interface.HTTPS,
                source_address=client_address(self.request),
            )
            if self.decision.retry_after:
                minutes = -(-self.decision.retry_after // 60)
                raise ValidationError(
                    f"Too many failed sign-ins. Try again in {minutes} minute{'s' if minutes != 1 else ''}.",
                    code="throttled",
                )
            if not self.decision.ok:
                raise self.get_invalid_login_error()
            self.user_cache = self.decision.user
        return self.cleaned_data
