"""What every admin page shares: who may see it, where a request came from, the named user, and
the confirmation page shown before a change that removes or stops something."""

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers

from signon.proxy import FROM_PROXY_ENVIRON_KEY
from signon.proxy import client_address as _client_address

from .models import NoSuchUser, User


def admin_required(view):
    """Admin pages: anonymous visitors go to the sign-in page, everyone else but admins gets 403."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        user = request.user
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not (user.is_active and getattr(user, "is_admin", False)):
            raise PermissionDenied("This page is for administrators.")
        response = view(request, *args, **kwargs)
        add_never_cache_headers(response)  # nothing an administrator sees stays in a cache
        return response

    return wrapper


def client_address(request) -> str | None:
    """The client's address: for a request from the front proxy, the one the proxy saw."""
    meta = request.META
    return _client_address(
        meta.get("REMOTE_ADDR"), meta.get("HTTP_X_FORWARDED_FOR"), bool(meta.get(FROM_PROXY_ENVIRON_KEY))
    )


def user_or_404(username: str) -> User:
    """The user named in a URL; a page saying there is no such user otherwise."""
    try:
        return User.objects.named(username)
    except NoSuchUser as exc:
        raise Http404(str(exc)) from None


def found_or_404(queryset, missing: str):
    """The one object ``queryset`` finds; a page saying ``missing`` (a sentence) otherwise."""
    found = queryset.first()
    if found is None:
        raise Http404(missing)
    return found


def confirm(
    request,
    *,
    title: str,
    question: str,
    button: str,
    cancel_url: str,
    consequence: str = "",
    button_style: str = "danger",
    hidden: dict | None = None,
    next_url: str | None = None,
    impact=None,
    stops=(),
):
    """The page that asks before a change; its form posts back to the same URL.

    ``impact`` lists the certificates that would stop connecting or authenticating (shown
    as a table, "nothing" when empty); ``stops`` what else would stop, in sentences; leave
    both out when the change has no preview.
    """
    context = {
        "title": title,
        "question": question,
        "consequence": consequence,
        "button": button,
        "button_style": button_style,
        "cancel_url": cancel_url,
        "hidden": hidden or {},
        "next": next_url,
        "show_impact": impact is not None,
        "consequences": impact or [],
        "stops": list(stops),
    }
    return render(request, "confirm.html", context)
