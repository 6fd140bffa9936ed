"""Org-level pages: Trusted CAs (approved list, match-CN, org CA), the root store, intermediates."""

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from users.access import admin_required, client_address

from . import flows, issuing, reports, trust
from .forms import ApproveFromRootForm, CertificateUploadForm, MatchCNForm, OrgCACreateForm, OrgCAImportForm
from .models import Certificate, Credential, OrgCA, Store, StoreEntry, TankEntry
from .views import safe_filename
from .x509 import describe_extensions

PAGE = {Store.ROOT: "certs:roots", Store.INTERMEDIATE: "certs:intermediates", Store.APPROVED: "certs:cas"}
REEXPORT = (
    "The front proxy's client CA bundle must be re-exported: download it from the root store page or run "
    "manage.py certs export-roots FILE, then reload the proxy."
)


def _certificate(sha256: str) -> Certificate:
    row = Certificate.objects.filter(sha256=sha256).first()
    if row is None:
        raise Http404("The app knows no certificate with that fingerprint.")
    return row


def _next_url(request, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure()):
        return target
    return default


def _entries(store):
    return StoreEntry.objects.in_store(store).order_by("certificate__subject_display", "id")


# --- the root store and the intermediate pool -------------------------------------------------


@admin_required
def store_page(request, store, upload_form=None, status=200):
    return render(
        request,
        "certs/store.html",
        {
            "store": Store(store),
            "entries": _entries(store),
            "upload_form": upload_form or CertificateUploadForm(),
            "add_url": reverse(f"{PAGE[store]}-add"),
            "remove_name": f"{PAGE[store]}-remove",
        },
        status=status,
    )


@admin_required
@require_POST
def store_add(request, store):
    form = CertificateUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        if store == Store.APPROVED:
            return _cas_page(request, upload_form=form, status=400)
        return store_page(request, store, upload_form=form, status=400)
    try:
        changes = flows.add_to_store(store, form.cleaned_data["certificates"], request.user, client_address(request))
    except flows.FlowError as exc:
        form.add_error("file", str(exc))
        if store == Store.APPROVED:
            return _cas_page(request, upload_form=form, status=400)
        return store_page(request, store, upload_form=form, status=400)
    _report(request, changes, store)
    return redirect(PAGE[store])


def _report(request, changes, store):
    for change in changes:
        (messages.success if change.changed else messages.info)(request, change.message)
        for warning in change.warnings:
            messages.warning(request, warning)
    if store == Store.ROOT and any(c.changed for c in changes):
        messages.warning(request, REEXPORT)


@admin_required
def store_remove(request, store, sha256):
    row = _certificate(sha256)
    if not StoreEntry.objects.filter(store=store, certificate=row).exists():
        raise Http404(f"'{row.subject_display}' is not in {Store(store).phrase}.")
    if request.method == "POST":
        messages.success(
            request, flows.remove_from_store(store, row.sha1, request.user, source_address=client_address(request))
        )
        if store == Store.ROOT:
            messages.warning(request, REEXPORT)
        return redirect(PAGE[store])
    consequence = {
        Store.ROOT: "Certificates that connect only through this certificate will no longer connect.",
        Store.INTERMEDIATE: "Clients that do not send this CA in their chain may no longer connect.",
        Store.APPROVED: "Certificates it signs will no longer authenticate by CN; thumbprints still work.",
    }[store]
    if OrgCA.objects.filter(certificate=row, is_active=True).exists():
        consequence += " It is the org CA: certificates it issues would stop working."
    return render(
        request,
        "confirm.html",
        {
            "title": f"Remove from {Store(store).phrase}",
            "question": f"Remove '{row.subject_display}' ({row.thumbprint}) from {Store(store).phrase}?",
            "consequence": consequence,
            "button": "Remove",
            "cancel_url": reverse(PAGE[store]),
            "show_impact": True,
            "consequences": reports.impact_of_store_removal(store, row),
        },
    )


@admin_required
def install_known(request, sha256):
    """Install a certificate the app already knows (e.g. a self-signed one just imported)."""
    return _add_known(request, sha256, Store.ROOT)


@admin_required
def approve_known(request, sha256):
    """Approve a CA the app already knows (e.g. the issuer of a certificate just imported)."""
    return _add_known(request, sha256, Store.APPROVED)


def _add_known(request, sha256, store):
    row = _certificate(sha256)
    back = _next_url(request, reverse(PAGE[store]))
    if request.method == "POST":
        try:
            changes = flows.add_to_store(store, [row.to_x509()], request.user, client_address(request))
        except flows.FlowError as exc:
            messages.error(request, str(exc))
        else:
            _report(request, changes, store)
        return redirect(back)
    consequence = {
        Store.ROOT: "It becomes a trust anchor: it connects, and so does anything it validly signs.",
        Store.APPROVED: "Certificates it signs may then authenticate by CN.",
    }[store]
    return render(
        request,
        "confirm.html",
        {
            "title": f"Add to {Store(store).phrase}",
            "question": f"Add '{row.subject_display}' ({row.thumbprint}) to {Store(store).phrase}?",
            "consequence": consequence,
            "button": "Add",
            "cancel_url": back,
            "next": back,
        },
    )


@admin_required
def roots_bundle(request):
    bundle, _ = flows.export_roots()
    response = HttpResponse(bundle, content_type="application/x-pem-file")
    response["Content-Disposition"] = 'attachment; filename="client-roots.pem"'
    return response


# --- Trusted CAs -----------------------------------------------------------------------------


@admin_required
def cas(request):
    return _cas_page(request)


def _cas_page(request, status=200, **forms):
    config = flows.trust_config()
    now = timezone.now()
    approved = []
    for entry in _entries(Store.APPROVED):
        connection = trust.chains_to_root_store(entry.certificate.to_x509(), config, now)
        approved.append({"entry": entry, "connects": connection.ok, "reason": connection.reason})
    context = {
        "approved": approved,
        "upload_form": forms.get("upload_form") or CertificateUploadForm(),
        "root_form": forms.get("root_form") or ApproveFromRootForm(),
        "match_form": MatchCNForm(initial={"match_cn": config.match_cn}),
        "match_cn": config.match_cn,
        "org_ca": OrgCA.active(),
        "create_form": forms.get("create_form") or OrgCACreateForm(),
        "import_form": forms.get("import_form") or OrgCAImportForm(),
    }
    return render(request, "certs/cas.html", context, status=status)


@admin_required
@require_POST
def approve_from_root(request):
    form = ApproveFromRootForm(request.POST)
    if not form.is_valid():
        return _cas_page(request, status=400, root_form=form)
    cert = form.cleaned_data["entry"].certificate.to_x509()
    _report(request, flows.add_to_store(Store.APPROVED, [cert], request.user, client_address(request)), Store.APPROVED)
    return redirect("certs:cas")


@admin_required
@require_POST
def match_cn(request):
    form = MatchCNForm(request.POST)
    form.is_valid()  # a checkbox: absent means off
    on = bool(form.cleaned_data.get("match_cn"))
    if not on and flows.trust_config().match_cn and request.POST.get("confirm") != "yes":
        # Turning it off can lock users out: show whom first.
        return render(
            request,
            "confirm.html",
            {
                "title": "Turn Match Cert CN to Username/Full Name off",
                "question": "Turn Match Cert CN to Username/Full Name off?",
                "consequence": "Certificates whose CN is a user's username or full name will no longer sign them on "
                "by that rule.",
                "button": "Turn it off",
                "cancel_url": reverse("certs:cas"),
                "hidden": {"confirm": "yes"},
                "show_impact": True,
                "consequences": reports.impact_of_match_cn(False),
            },
        )
    message = flows.set_match_cn(on, request.user, source_address=client_address(request))
    messages.success(request, message)
    return redirect("certs:cas")


def _rotation_confirmed(request) -> bool:
    return OrgCA.active() is None or request.POST.get("rotate") == "yes"


@admin_required
@require_POST
def org_ca_create(request):
    form = OrgCACreateForm(request.POST)
    if not form.is_valid():
        return _cas_page(request, status=400, create_form=form)
    if not _rotation_confirmed(request):
        form.add_error(None, "Tick the box to confirm that the new CA replaces the current org CA.")
        return _cas_page(request, status=400, create_form=form)
    try:
        _, notes = flows.create_org_ca(
            form.cleaned_data["cn"],
            request.user,
            key_type=form.cleaned_data["key_type"],
            days=form.cleaned_data["days"],
            rotate=True,
            source_address=client_address(request),
        )
    except (flows.FlowError, issuing.IssuingError) as exc:
        form.add_error(None, str(exc))
        return _cas_page(request, status=400, create_form=form)
    for note in notes:
        messages.success(request, note)
    messages.warning(request, REEXPORT)
    return redirect("certs:cas")


@admin_required
@require_POST
def org_ca_import(request):
    form = OrgCAImportForm(request.POST, request.FILES)
    if not form.is_valid():
        return _cas_page(request, status=400, import_form=form)
    if not _rotation_confirmed(request):
        form.add_error(None, "Tick the box to confirm that the imported CA replaces the current org CA.")
        return _cas_page(request, status=400, import_form=form)
    cert, key = form.cleaned_data["ca"]
    try:
        _, notes = flows.import_org_ca(cert, key, request.user, rotate=True, source_address=client_address(request))
    except flows.FlowError as exc:
        form.add_error(None, str(exc))
        return _cas_page(request, status=400, import_form=form)
    for note in notes:
        messages.success(request, note)
    messages.warning(request, REEXPORT)
    return redirect("certs:cas")


@admin_required
def org_ca_download(request):
    org_ca = OrgCA.active()
    if org_ca is None:
        raise Http404("There is no org CA yet.")
    return _pem_response(org_ca.certificate)


# --- any certificate -------------------------------------------------------------------------


@admin_required
def certificate_detail(request, sha256):
    row = _certificate(sha256)
    cert = row.to_x509()
    context = {
        "row": row,
        "extensions": describe_extensions(cert),
        "stores": [Store(s) for s in StoreEntry.objects.filter(certificate=row).values_list("store", flat=True)],
        "credentials": Credential.objects.filter(certificate=row).select_related("user"),
        "tank": TankEntry.objects.filter(certificate=row).select_related("user"),
        "is_org_ca": OrgCA.objects.filter(certificate=row).exists(),
        "issuer": flows.find_issuer(cert) if not row.self_signed else None,
    }
    return render(request, "certs/certificate.html", context)


@admin_required
def certificate_download(request, sha256):
    return _pem_response(_certificate(sha256))


def _pem_response(row: Certificate) -> HttpResponse:
    response = HttpResponse(row.pem, content_type="application/x-pem-file")
    response["Content-Disposition"] = f'attachment; filename="{safe_filename(row.common_name, row.sha1[:12])}.pem"'
    return response
