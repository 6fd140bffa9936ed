import atexit
import logging

from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit log"

    def ready(self):
        atexit.register(_flush_repeats)


def _flush_repeats():
    from .models import AuditEvent

    try:
        AuditEvent.objects.flush_repeats()
    except Exception:  # the database may be gone at exit; the counts are all that is lost
        logging.getLogger(__name__).warning("Could not write pending audit repeat counts at exit.")
