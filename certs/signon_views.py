"""Signing on and off: the sign-on page, certificate sign-on on request, sign-out, whoami."""

from django.contrib import auth, messages
from django.contrib.auth.views import LoginView
from django.http import JsonResponse
from django.shortcuts import redirect
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from .forms import SignOnForm
from .middleware import PASSWORD_NEEDED_KEY, SESSION_KEY, SIGNED_OUT_KEY
from .x509 import display_name, sha256_fingerprint


class SignOnView(LoginView):
    form_class = SignOnForm
    template_name = "registration/login.html"

    def dispatch(self, request, *args, **kwargs):
        # Someone signed on already is sent on, but a posted form is always decided: an admin
        # signing in with a password must not end up as whoever the browser's certificate names.
        self.redirect_authenticated_user = request.method != "POST"
        return super().dispatch(request, *args, **kwargs)

    def get_initial(self):
        initial = super().get_initial()
        waiting = self._password_needed()
        if waiting:
            initial["username"] = waiting["username"]
        return initial

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        cert = self.request.client_certificate.cert
        if cert is not None:
            context["certificate"] = {"subject": display_name(cert.subject), "issuer": display_name(cert.issuer)}
            context["signed_out_of_certificate"] = self.request.session.get(SIGNED_OUT_KEY) == sha256_fingerprint(cert)
        context["password_needed"] = self._password_needed()
        return context

    def _password_needed(self):
        cert = self.request.client_certificate.cert
        waiting = self.request.session.get(PASSWORD_NEEDED_KEY)
        if cert is None or not waiting or waiting.get("cert") != sha256_fingerprint(cert):
            return None
        return waiting


@never_cache
@require_POST
def sign_on_with_certificate(request):
    """Sign on with the presented certificate again, e.g. after signing out of it."""
    presented = request.client_certificate
    if presented.cert is None:
        messages.error(request, "Your browser did not present a client certificate.")
        return redirect("login")
    request.session.pop(SIGNED_OUT_KEY, None)
    user = auth.authenticate(request, client_certificate=presented)
    if user is None:
        messages.error(request, "Sign-on failed. Check your username, your password and your client certificate.")
        return redirect("login")
    auth.login(request, user)
    return redirect("home")


@require_POST
def sign_out(request):
    """Sign out, and do not sign straight back in with the certificate the browser keeps sending."""
    cert = request.client_certificate.cert
    auth.logout(request)
    if cert is not None:
        request.session[SIGNED_OUT_KEY] = sha256_fingerprint(cert)
    messages.info(request, "You have signed out.")
    return redirect("login")


@never_cache
@require_GET
def whoami(request):
    """Who the request is signed on as, and how: for scripts and health checks."""
    user = request.user
    if not user.is_authenticated:
        return JsonResponse({"authenticated": False, "username": None, "method": None, "rule": None})
    info = request.session.get(SESSION_KEY) or {"method": "password", "rule": None}
    return JsonResponse(
        {
            "authenticated": True,
            "username": user.username,
            "method": info.get("method") or "password",
            "rule": info.get("rule"),
        }
    )
