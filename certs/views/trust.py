"""Org-level pages: the root store and the intermediate pool, Trusted CAs (the approved list, Match
CN, the org CA), and any certificate the app knows."""

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from users.pages import admin_required, client_address, confirm

from .. import crls, flows, issuing, org_ca, reports, verdicts
from ..forms import ApproveFromRootForm, CertificateUploadForm, MatchCNForm, OrgCACreateForm, OrgCAImportForm
from ..models import Credential, OrgCA, Store, StoreEntry, TankEntry
from ..x509 import describe_extensions
from . import certificate_or_404, pem_response, report

PAGE = {Store.ROOT: "certs:roots", Store.INTERMEDIATE: "certs:intermediates", Store.APPROVED: "certs:cas"}


def _next_url(request, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure()):
        return target
    return default


# --- the root store and the intermediate pool -------------------------------------------------


@admin_required
def store_page(request, store, upload_form=None, status=200):
    if store == Store.APPROVED:
        return _cas_page(request, status=status, upload_form=upload_form)
    entries = list(StoreEntry.objects.in_store(store).order_by("certificate__subject_display", "id"))
    _with_crl_status(entries)
    return render(
        request,
        "certs/store.html",
        {
            "store": Store(store),
            "entries": entries,
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
    if form.is_valid():
        try:
            outcome = flows.add_to_store(
                store, form.cleaned_data["certificates"], request.user, client_address(request)
            )
        except flows.FlowError as exc:
            form.add_error("file", str(exc))
        else:
            report(request, outcome)
            return redirect(PAGE[store])
    return store_page(request, store, upload_form=form, status=400)


@admin_required
def store_remove(request, store, sha256):
    row = certificate_or_404(sha256)
    if not StoreEntry.objects.filter(store=store, certificate=row).exists():
        raise Http404(f"'{row.subject_display}' is not in {Store(store).phrase}.")
    if request.method == "POST":
        report(request, flows.remove_from_store(store, row.sha1, request.user, source_address=client_address(request)))
        return redirect(PAGE[store])
    consequence = {
        Store.ROOT: "Certificates that connect only through this certificate will no longer connect.",
        Store.INTERMEDIATE: "Clients that do not send this CA in their chain may no longer connect.",
        Store.APPROVED: "Certificates it signs will no longer authenticate by CN; thumbprints still work.",
    }[store]
    if OrgCA.objects.filter(certificate=row, is_active=True).exists():
        consequence += " It is the org CA: certificates it issues would stop working."
    return confirm(
        request,
        title=f"Remove from {Store(store).phrase}",
        question=f"Remove '{row.subject_display}' ({row.thumbprint}) from {Store(store).phrase}?",
        consequence=consequence,
        button="Remove",
        cancel_url=reverse(PAGE[store]),
        impact=reports.impact_of_store_removal(store, row),
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
    row = certificate_or_404(sha256)
    back = _next_url(request, reverse(PAGE[store]))
    if request.method == "POST":
        try:
            report(request, flows.add_to_store(store, [row.to_x509()], request.user, client_address(request)))
        except flows.FlowError as exc:
            messages.error(request, str(exc))
        return redirect(back)
    consequence = {
        Store.ROOT: "It becomes a trust anchor: it connects, and so does anything it validly signs.",
        Store.APPROVED: "Certificates it signs may then authenticate by CN.",
    }[store]
    return confirm(
        request,
        title=f"Add to {Store(store).phrase}",
        question=f"Add '{row.subject_display}' ({row.thumbprint}) to {Store(store).phrase}?",
        consequence=consequence,
        button="Add",
        cancel_url=back,
        next_url=back,
    )


@admin_required
def roots_bundle(request):
    try:
        bundle, _ = flows.export_roots()
    except flows.FlowError as exc:
        messages.error(request, str(exc))
        return redirect(PAGE[Store.ROOT])
    response = HttpResponse(bundle, content_type="application/x-pem-file")
    response["Content-Disposition"] = 'attachment; filename="client-roots.pem"'
    return response


def _with_crl_status(entries) -> None:
    """Mark each store entry of a CA with its newest CRL's freshness (``crl_info``)."""
    found = crls.crl_status([e.certificate for e in entries if e.certificate.is_ca])
    for entry in entries:
        entry.crl_info = found.get(entry.certificate.pk)


# --- Trusted CAs -----------------------------------------------------------------------------


@admin_required
def cas(request):
    return _cas_page(request)


def _cas_page(request, status=200, **forms):
    match_cn = verdicts.trust_config().match_cn
    approved = reports.approved_cas()
    _with_crl_status([a.entry for a in approved])
    context = {
        "approved": approved,
        "upload_form": forms.get("upload_form") or CertificateUploadForm(),
        "root_form": forms.get("root_form") or ApproveFromRootForm(),
        "match_form": MatchCNForm(initial={"match_cn": match_cn}),
        "match_cn": match_cn,
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
    report(request, flows.add_to_store(Store.APPROVED, [cert], request.user, client_address(request)))
    return redirect("certs:cas")


@admin_required
@require_POST
def match_cn(request):
    form = MatchCNForm(request.POST)
    form.is_valid()  # a checkbox: absent means off
    on = bool(form.cleaned_data.get("match_cn"))
    if not on and verdicts.trust_config().match_cn and request.POST.get("confirm") != "yes":
        # Turning it off can lock users out: show whom first.
        return confirm(
            request,
            title="Turn Match Cert CN to Username/Full Name off",
            question="Turn Match Cert CN to Username/Full Name off?",
            consequence="Certificates whose CN is a user's username or full name will no longer sign them on "
            "by that rule.",
            button="Turn it off",
            cancel_url=reverse("certs:cas"),
            hidden={"confirm": "yes"},
            impact=reports.impact_of_match_cn(False),
        )
    messages.success(request, flows.set_match_cn(on, request.user, source_address=client_address(request)))
    return redirect("certs:cas")


@admin_required
@require_POST
def org_ca_create(request):
    form = OrgCACreateForm(request.POST)

    def make():
        data = form.cleaned_data
        return org_ca.create(
            data["cn"],
            request.user,
            key_type=data["key_type"],
            days=data["days"],
            rotate=True,
            source_address=client_address(request),
        )

    return _install_org_ca(request, form, "create_form", make, "the new CA")


@admin_required
@require_POST
def org_ca_import(request):
    form = OrgCAImportForm(request.POST, request.FILES)

    def make():
        cert, key = form.cleaned_data["ca"]
        return org_ca.import_existing(cert, key, request.user, rotate=True, source_address=client_address(request))

    return _install_org_ca(request, form, "import_form", make, "the imported CA")


def _install_org_ca(request, form, form_name: str, make, what: str):
    """Create or import the org CA; replacing the current one needs the rotation box ticked."""
    if form.is_valid():
        if OrgCA.active() is not None and request.POST.get("rotate") != "yes":
            form.add_error(None, f"Tick the box to confirm that {what} replaces the current org CA.")
        else:
            try:
                _, outcome = make()
            except (flows.FlowError, issuing.IssuingError) as exc:
                form.add_error(None, str(exc))
            else:
                report(request, outcome)
                return redirect("certs:cas")
    return _cas_page(request, status=400, **{form_name: form})


@admin_required
def org_ca_download(request):
    current = OrgCA.active()
    if current is None:
        raise Http404("There is no org CA yet.")
    return pem_response(current.certificate)


# --- any certificate -------------------------------------------------------------------------


@admin_required
def certificate_detail(request, sha256):
    row = certificate_or_404(sha256)
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
    return pem_response(certificate_or_404(sha256))
