from django.apps import AppConfig


class CertsConfig(AppConfig):
    name = "certs"
    verbose_name = "Client certificates"

    def ready(self):
        # Connects the receiver that remembers how each session was signed on.
        from . import middleware  # noqa: F401
