"""The OpenAPI description and the docs page (Swagger UI from the sidecar package, served from
the service's own static files: the page loads nothing from anywhere else)."""

from django.conf import settings
from django.shortcuts import render
from django.views.decorators.http import require_GET
from drf_spectacular.views import SpectacularAPIView

from ..auth import Anyone


class Schema(SpectacularAPIView):
    """The OpenAPI 3 description, for anyone: it describes the operations and holds no data."""

    authentication_classes = []
    permission_classes = [Anyone]


@require_GET
def docs(request):
    """The browsable docs. The page carries no inline script or style (the Content-Security-Policy
    allows none); ``static/api/docs.js`` starts Swagger UI. A browser signed in to the pages tries
    operations with its session, sending the CSRF cookie's token on writes."""
    return render(request, "api/docs.html", {"csrf_cookie_name": settings.CSRF_COOKIE_NAME})
