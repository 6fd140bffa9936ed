import datetime as dt

from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from certs import reports
from certs.middleware import SESSION_KEY
from certs.models import Credential, OrgCA, Store, StoreEntry, TankEntry, TrustSettings
from certs.trust import RULE_TEXT
from certs.x509 import display_name, sha256_fingerprint
from users.models import User


@require_GET
def home(request):
    user = request.user
    if user.is_authenticated and user.is_admin:
        counts = dict.fromkeys(Store.values, 0)
        for store in StoreEntry.objects.values_list("store", flat=True):
            counts[store] += 1
        context = {
            "users": User.objects.count(),
            "roots": counts[Store.ROOT],
            "intermediates": counts[Store.INTERMEDIATE],
            "approved": counts[Store.APPROVED],
            "org_tank": TankEntry.objects.filter(user__isnull=True).count(),
            "user_tank": TankEntry.objects.filter(user__isnull=False).count(),
            "org_ca": OrgCA.active(),
            "match_cn": TrustSettings.get().match_cn,
            "expiring": reports.expiring()[:25],
            "expiry_days": reports.expiry_window_days(),
        }
        return render(request, "dashboard.html", {**context, **_signed_on(request)})
    return render(request, "home.html", {**_signed_on(request), **_own_expiry(request)})


def _own_expiry(request) -> dict:
    """For an end user: their own certificates that expire soon or have expired."""
    if not request.user.is_authenticated:
        return {}
    days = reports.expiry_window_days()
    soon = timezone.now() + dt.timedelta(days=days)
    warnings = []
    presented = request.client_certificate.cert
    if presented is not None and presented.not_valid_after_utc <= soon:
        warnings.append((display_name(presented.subject), presented.not_valid_after_utc))
    for credential in Credential.objects.filter(user=request.user, certificate__not_after__lte=soon).select_related(
        "certificate"
    ):
        item = (credential.certificate.subject_display, credential.certificate.not_after)
        if presented is None or sha256_fingerprint(presented) != credential.certificate.sha256:
            warnings.append(item)
    return {"expiry_warnings": warnings, "now": timezone.now()}


METHOD_TEXT = {
    "password": "your password",
    "certificate": "your client certificate",
    "certificate+password": "your client certificate and your password",
}


def _signed_on(request) -> dict:
    """How the current session was signed on, in words."""
    if not request.user.is_authenticated:
        return {}
    info = request.session.get(SESSION_KEY) or {"method": "password"}
    method = info.get("method") or "password"
    return {
        "signed_on_by": METHOD_TEXT.get(method, method),
        "signed_on_rule": RULE_TEXT.get(info.get("rule")) if info.get("rule") else None,
    }


@require_GET
def healthz(request):
    """For load balancers and container health checks: the app answers and reaches its database."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        return JsonResponse({"ok": False, "database": "unreachable"}, status=503)
    return JsonResponse({"ok": True})
