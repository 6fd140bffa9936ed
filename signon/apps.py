from django.apps import AppConfig


class SignOnConfig(AppConfig):
    name = "signon"
    verbose_name = "Sign-on"
