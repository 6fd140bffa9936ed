from django.urls import include, path

from certs import signon_views

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/login/", signon_views.SignOnView.as_view(), name="login"),
    path("accounts/certificate/", signon_views.sign_on_with_certificate, name="certificate-sign-on"),
    path("accounts/logout/", signon_views.sign_out, name="logout"),
    path("api/whoami", signon_views.whoami, name="whoami"),
    path("", include("users.urls")),
    path("", include("certs.urls")),
]
