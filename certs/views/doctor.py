"""The certificate doctor (why a certificate can or cannot sign on) and the sign-on overview."""

import re

from django.http import Http404
from django.shortcuts import render

from users.models import User
from users.pages import admin_required

from .. import reports, trust
from ..chain import MARK_TEXT
from ..forms import DoctorForm
from ..models import Certificate
from ..x509 import sha256_fingerprint

_FINGERPRINT = re.compile("[0-9A-F]{64}")
PERIODS = {1: "the last day", 7: "the last 7 days", 30: "the last 30 days", 90: "the last 90 days"}


@admin_required
def doctor(request):
    """GET shows the form, or examines a certificate the app knows (?certificate=SHA-256, with
    ?chain= and ?user=, as the holding tank and the audit log link here); POST examines one."""
    if request.method == "POST":
        form = DoctorForm(request.POST, request.FILES)
        if not form.is_valid():
            return render(request, "certs/doctor.html", {"form": form}, status=400)
        cert, chain, user = form.cleaned_data["certificate"], form.cleaned_data["chain"], form.cleaned_data["username"]
        username = user.username if user is not None else None
    elif request.GET.get("certificate"):
        fingerprint = request.GET["certificate"].upper()
        row = Certificate.objects.filter(sha256=fingerprint).first() if _FINGERPRINT.fullmatch(fingerprint) else None
        if row is None:
            raise Http404("The app knows no certificate with that fingerprint.")
        cert = row.to_x509()
        chain = reports.known_chain(
            [s for s in request.GET.get("chain", "").upper().split(",") if _FINGERPRINT.fullmatch(s)]
        )
        username = request.GET.get("user") or None
        if username and User.objects.find(username) is None:
            username = None
        form = DoctorForm(initial={"username": username or ""})
    else:
        return render(request, "certs/doctor.html", {"form": DoctorForm()})
    diagnosis = reports.diagnose(cert, chain, username=username)
    return render(request, "certs/doctor.html", {"form": form, **_context(diagnosis, cert)})


def _context(diagnosis, cert) -> dict:
    verdict = diagnosis.verdict
    rules = [
        {
            "username": decision.username,
            # A credential rule holding is not enough: the certificate must connect, and name one user.
            "authenticates": verdict.authentication.ok and verdict.authentication.user == decision.username,
            "credential_holds": decision.authenticates,
            "inactive": not decision.is_active,
            "checks": [(trust.RULE_TEXT[rule], check) for rule, check in decision.checks],
        }
        for decision in diagnosis.decisions
    ]
    return {
        "diagnosis": diagnosis,
        "verdict": verdict,
        "category": verdict.category,
        "boxes": [{"box": b, "marks": [(m, MARK_TEXT[m]) for m in b.marks]} for b in diagnosis.picture.boxes],
        "rules": rules,
        # Known to the app: then its certificate page can be linked.
        "known": Certificate.objects.filter(sha256=sha256_fingerprint(cert)).values_list("sha256", flat=True).first(),
    }


@admin_required
def overview(request):
    try:
        days = int(request.GET.get("days", 7))
    except ValueError:
        days = 7
    if days not in PERIODS:
        days = 7
    data = reports.overview(days)
    sections = [
        {
            "category": category,
            "title": text,
            "rows": data.rows[category][:200],
            "count": data.count(category),
            "reasons": data.reasons[category],
        }
        for category, text in trust.CATEGORY_TEXT.items()
    ]
    return render(
        request,
        "certs/overview.html",
        {"sections": sections, "days": days, "periods": PERIODS, "period_label": PERIODS[days], "since": data.since},
    )
