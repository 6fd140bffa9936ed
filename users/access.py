"""Who may see admin pages, and where a request came from."""

from functools import wraps

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied

from certs.proxy import client_address as _client_address


def admin_required(view):
    """Admin pages: anonymous visitors go to the sign-in page, everyone else but admins gets 403."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        user = request.user
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not (user.is_active and getattr(user, "is_admin", False)):
            raise PermissionDenied("This page is for administrators.")
        return view(request, *args, **kwargs)

    return wrapper


def client_address(request) -> str | None:
    """The client's address: behind a configured proxy, the one the proxy reports."""
    return _client_address(
        request.META.get("REMOTE_ADDR"), request.META.get("HTTP_X_FORWARDED_FOR"), settings.MFT_TRUSTED_PROXIES
    )
