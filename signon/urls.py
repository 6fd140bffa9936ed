from django.templatetags.static import static
from django.urls import path, re_path
from django.views.generic import RedirectView

from . import est, gate, views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/login/", views.SignOnView.as_view(), name="login"),
    path("accounts/certificate/", views.sign_on_with_certificate, name="certificate-sign-on"),
    path("accounts/logout/", views.sign_out, name="logout"),
    path("api/whoami", views.whoami, name="whoami"),
    # Browsers ask for this address whatever a page says.
    path("favicon.ico", RedirectView.as_view(url=static("favicon.svg"), permanent=True)),
    re_path(r"^auth/forward(?P<rest>/.*)?$", gate.forward_auth, name="forward-auth"),
    # EST (RFC 7030): the org CA, and re-enrolment with the current client certificate.
    path(".well-known/est/cacerts", est.cacerts, name="est-cacerts"),
    path(".well-known/est/simpleenroll", est.simpleenroll, name="est-simpleenroll"),
    path(".well-known/est/simplereenroll", est.simplereenroll, name="est-simplereenroll"),
]
