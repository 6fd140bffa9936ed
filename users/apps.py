import atexit
import logging

from django.apps import AppConfig


class UsersConfig(AppConfig):
    name = "users"
    verbose_name = "Users"

    def ready(self):
        atexit.register(_flush_audit_repeats)


def _flush_audit_repeats():
    from .models import AuditEvent

    try:
        AuditEvent.objects.flush_repeats()
    except Exception:  # the database may be gone at exit; the counts are all that is lost
        logging.getLogger(__name__).warning("Could not write pending audit repeat counts at exit.")
