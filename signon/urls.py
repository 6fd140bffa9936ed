from django.urls import path, re_path

from . import gate, views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/login/", views.SignOnView.as_view(), name="login"),
    path("accounts/certificate/", views.sign_on_with_certificate, name="certificate-sign-on"),
    path("accounts/logout/", views.sign_out, name="logout"),
    path("api/whoami", views.whoami, name="whoami"),
    re_path(r"^auth/forward(?P<rest>/.*)?$", gate.forward_auth, name="forward-auth"),
]
