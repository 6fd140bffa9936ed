"""What anyone reaches: signing on and off, whoami, the home page, and the health check."""

from django.contrib import messages
from django.contrib.auth.views import LoginView
from django.db import connection
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.urls import Resolver404
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from certs.views.dashboard import dashboard
from certs.x509 import display_name
from users.pages import client_address

from . import flows, session, tls
from .forms import SignOnForm
from .middleware import unguarded_proxy_warning

REFUSED = "Sign-on failed. Check your username, your password and your client certificate."


class SignOnView(LoginView):
    form_class = SignOnForm
    template_name = "signon/login.html"

    def dispatch(self, request, *args, **kwargs):
        # Someone signed on already is sent on, but a posted form is always decided: an admin
        # signing in with a password must not end up as whoever the browser's certificate names.
        self.redirect_authenticated_user = request.method != "POST"
        return super().dispatch(request, *args, **kwargs)

    def get_initial(self):
        initial = super().get_initial()
        waiting = session.password_needed(self.request, self.request.client_certificate.cert)
        if waiting:
            initial["username"] = waiting
        return initial

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        cert = self.request.client_certificate.cert
        if cert is not None:
            context["certificate"] = {"subject": display_name(cert.subject), "issuer": display_name(cert.issuer)}
            context["signed_out_of_certificate"] = session.signed_out_of(self.request, cert)
        context["password_needed"] = session.password_needed(self.request, cert)
        return context

    def form_valid(self, form):
        session.start(self.request, form.decision)
        return HttpResponseRedirect(self.get_success_url())


@never_cache
@require_POST
def sign_on_with_certificate(request):
    """Sign on with the presented certificate again, e.g. after signing out of it."""
    presented = request.client_certificate
    if presented.cert is None:
        messages.error(request, "Your browser did not present a client certificate.")
        return redirect("login")
    session.forget_sign_out(request)
    decision = flows.sign_on(presented, source_address=client_address(request))
    if not decision.ok:
        messages.error(request, REFUSED)
        return redirect("login")
    session.start(request, decision)
    return redirect("home")


@require_POST
def sign_out(request):
    """Sign out, and do not sign straight back in with the certificate the browser keeps sending."""
    session.sign_out(request, request.client_certificate.cert)
    messages.info(request, "You have signed out.")
    return redirect("login")


@never_cache
@require_GET
def whoami(request):
    """Who the request is signed on as, and how: for scripts and health checks."""
    user = request.user
    if not user.is_authenticated:
        return JsonResponse({"authenticated": False, "username": None, "method": None, "rule": None})
    how = session.how(request)
    return JsonResponse({"authenticated": True, "username": user.username, "method": how.method, "rule": how.rule})


@never_cache
@require_GET
def home(request):
    """The administrator's dashboard, or the end user's home."""
    user = request.user
    signed_on = session.in_words(request)
    if user.is_authenticated and user.is_admin:
        return dashboard(request, signed_on, warnings=service_warnings())
    if user.is_authenticated:
        # An end user's home is their files (with how they signed on and their certificates).
        return redirect("files:home")
    return render(request, "signon/home.html", signed_on)


def service_warnings() -> list[str]:
    """What an administrator must know about how sign-on is set up in this process."""
    return [problem for problem in (unguarded_proxy_warning(), tls.context_failure()) if problem]


@require_GET
def healthz(request):
    """For load balancers and container health checks: the app answers and reaches its database."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        return JsonResponse({"ok": False, "database": "unreachable"}, status=503)
    return JsonResponse({"ok": True})


def page_not_found(request, exception):
    """Nothing at this address: the app's own sentence when it gave one, never the framework's
    internals (a resolver's name, a query's wording)."""
    message = exception.args[0] if exception is not None and exception.args else ""
    own = isinstance(message, str) and not isinstance(exception, Resolver404)
    return render(request, "404.html", {"message": message if own else ""}, status=404)
