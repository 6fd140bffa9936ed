import os
import sys

from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mft.settings")

try:
    application = get_wsgi_application()
except ImproperlyConfigured as exc:
    # A bad environment variable: say which, without a traceback, and do not start.
    sys.stderr.write(f"Configuration error: {exc}\n")
    sys.exit(1)
