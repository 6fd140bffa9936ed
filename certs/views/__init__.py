"""The certificate pages, by family: ``profiles`` (Edit SSL Client Certificates, per user), ``tank``
(the org holding tank), ``trust`` (the stores, Trusted CAs, the org CA, any certificate),
``doctor`` (the doctor and the sign-on overview) and ``dashboard``. What they share is here."""

from django.contrib import messages
from django.http import Http404, HttpResponse

from ..flows import Outcome
from ..models import Certificate


def report(request, outcome: Outcome) -> None:
    """Show what a use case did: each change (or why nothing changed), then what to know next."""
    for change in outcome.changes:
        (messages.success if change.changed else messages.info)(request, change.message)
    for warning in outcome.all_warnings():
        messages.warning(request, warning)


def safe_filename(name: str, fallback: str) -> str:
    """A file name every browser takes as it is: ASCII letters, digits, - _ . only."""
    cleaned = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in name).strip("._")
    return cleaned[:80] or fallback


def certificate_or_404(sha256: str) -> Certificate:
    row = Certificate.objects.filter(sha256=sha256).first()
    if row is None:
        raise Http404("The app knows no certificate with that fingerprint.")
    return row


def pem_response(row: Certificate) -> HttpResponse:
    response = HttpResponse(row.pem, content_type="application/x-pem-file")
    response["Content-Disposition"] = f'attachment; filename="{safe_filename(row.common_name, row.sha1[:12])}.pem"'
    return response
