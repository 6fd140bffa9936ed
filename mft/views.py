from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from certs.models import OrgCA, Store, StoreEntry, TankEntry, TrustSettings
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
        }
        return render(request, "dashboard.html", context)
    return render(request, "home.html")


@require_GET
def healthz(request):
    """For load balancers and container health checks: the app answers and reaches its database."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        return JsonResponse({"ok": False, "database": "unreachable"}, status=503)
    return JsonResponse({"ok": True})
