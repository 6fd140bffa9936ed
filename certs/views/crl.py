"""The org CA's CRL, served to anyone (clients, proxies and other servers fetch it unsigned-on)."""

from django.http import Http404, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_safe

from .. import org_ca


@require_safe
def org_ca_crl(request):
    """The org CA's CRL in DER, re-signed first when half of its life is gone."""
    row = org_ca.current_crl()
    if row is None:
        raise Http404("There is no org CA.")
    response = HttpResponse(bytes(row.der), content_type="application/pkix-crl")
    remaining = int((row.next_update - timezone.now()).total_seconds()) if row.next_update else 0
    response["Cache-Control"] = f"public, max-age={max(0, min(3600, remaining))}"
    response["Content-Disposition"] = 'inline; filename="org-ca.crl"'
    return response
