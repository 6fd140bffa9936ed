"""Revocation: the org default policy, the per-CA policies and the stored CRLs, through the same
use cases as ``certs crls`` and ``certs revocation`` on the command line and the API."""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from users.pages import admin_required, client_address, confirm

from .. import crls, flows, org_ca
from .. import revocation as rev
from ..forms import CaPolicyForm, CrlUploadForm, RevocationPolicyForm
from ..models import OrgCA, RevocationPolicy
from ..x509 import ThumbprintError, format_thumbprint, parse_thumbprint
from . import report

PAGE = "certs:revocation"
FETCHED = {"added": messages.success, "unchanged": messages.info, "fresh": messages.info}
FETCH_WORDS = {
    "added": "Added",
    "unchanged": "Unchanged",
    "fresh": "Not fetched, still fresh",
    "refused": "Refused",
    "failed": "Failed",
}


def _stored_crls() -> list:
    """The stored CRLs, each with its freshness, age and where it came from."""
    now = timezone.now()
    org_cas = set(OrgCA.objects.values_list("certificate_id", flat=True))
    rows = list(crls.stored_crls())
    for row in rows:
        row.freshness = crls.freshness(row, now)
        row.age_hours = crls.crl_as_dict(row, now)["age_hours"]
        if row.source_url:
            row.source = "fetched"
        elif row.signer_id in org_cas:
            row.source = "org CA"
        else:
            row.source = "uploaded"
    return rows


def _overrides() -> list:
    rows = list(RevocationPolicy.objects.exclude(ca_sha1="").select_related("ca").order_by("ca__subject_display"))
    for row in rows:
        row.description = rev.Policy(row.check_by, row.when_unknown, row.grace_hours).describe()
        row.thumbprint = format_thumbprint(row.ca_sha1)
    return rows


@admin_required
def revocation(request, status=200, **forms):
    default = crls.default_policy()
    initial = {"check": default.check, "when_unknown": default.when_unknown, "grace_hours": default.grace_hours}
    context = {
        "default": default,
        "default_row": RevocationPolicy.objects.filter(ca_sha1="").first(),
        "policy_form": forms.get("policy_form") or RevocationPolicyForm(initial=initial),
        "ca_form": forms.get("ca_form") or CaPolicyForm(initial=initial),
        "overrides": _overrides(),
        "crls": _stored_crls(),
        "upload_form": forms.get("upload_form") or CrlUploadForm(),
        "distribution_points": crls.distribution_points(),
    }
    return render(request, "certs/revocation.html", context, status=status)


@admin_required
@require_POST
def set_default(request):
    form = RevocationPolicyForm(request.POST)
    if not form.is_valid():
        return revocation(request, status=400, policy_form=form)
    return _set_policy(request, form, None, "policy_form")


@admin_required
@require_POST
def set_ca_policy(request):
    form = CaPolicyForm(request.POST)
    if not form.is_valid():
        return revocation(request, status=400, ca_form=form)
    return _set_policy(request, form, form.cleaned_data["ca"], "ca_form")


def _set_policy(request, form, thumbprint, form_name):
    data = form.cleaned_data
    # As the command line does: an org CA made before revocation existed gets its CRL first,
    # so that checking never finds the org CA without one.
    org_ca.current_crl()
    try:
        outcome = crls.set_policy(
            request.user,
            check=data["check"],
            ca_thumbprint=thumbprint,
            when_unknown=data["when_unknown"],
            grace_hours=data["grace_hours"],
            source_address=client_address(request),
        )
    except (flows.FlowError, ThumbprintError) as exc:
        form.add_error(None, str(exc))
        return revocation(request, status=400, **{form_name: form})
    report(request, outcome)
    return redirect(reverse(PAGE) + ("#overrides" if thumbprint else "#policy"))


@admin_required
def remove_ca_policy(request, thumbprint):
    try:
        sha1 = parse_thumbprint(thumbprint)
    except ThumbprintError:
        raise Http404("That is no thumbprint.") from None
    row = RevocationPolicy.objects.select_related("ca").filter(ca_sha1=sha1).first()
    if row is None:
        raise Http404("That CA has no revocation policy of its own.")
    if request.method == "POST":
        try:
            messages.success(request, crls.remove_policy(request.user, sha1, source_address=client_address(request)))
        except flows.FlowError as exc:
            messages.error(request, str(exc))
        return redirect(reverse(PAGE) + "#overrides")
    whose = f"'{row.ca.subject_display}' ({row.ca.thumbprint})" if row.ca else format_thumbprint(sha1)
    return confirm(
        request,
        title="Remove a CA's revocation policy",
        question=f"Remove the revocation policy of {whose}?",
        consequence=f"Certificates it issued then follow the org default: {crls.default_policy().describe()}.",
        button="Remove",
        cancel_url=reverse(PAGE) + "#overrides",
    )


@admin_required
@require_POST
def upload_crl(request):
    form = CrlUploadForm(request.POST, request.FILES)
    if form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            outcome, refused = crls.add_crl_file(
                upload.read(), request.user, filename=upload.name or "", source_address=client_address(request)
            )
        except flows.FlowError as exc:
            form.add_error("file", str(exc))
        else:
            if refused and not outcome.changes:
                for reason in refused:
                    form.add_error("file", reason)
            else:
                report(request, outcome)
                for reason in refused:
                    messages.error(request, reason)
                return redirect(reverse(PAGE) + "#crls")
    return revocation(request, status=400, upload_form=form)


@admin_required
def remove_crl(request, pk):
    row = crls.stored_crls().filter(pk=pk).first()
    if row is None:
        raise Http404("There is no such CRL.")
    if request.method == "POST":
        try:
            messages.success(request, crls.remove_crl(row.pk, request.user, source_address=client_address(request)))
        except flows.FlowError as exc:
            messages.error(request, str(exc))
        return redirect(reverse(PAGE) + "#crls")
    kind = "delta CRL" if row.is_delta else "CRL"
    number = f" number {row.number}" if row.number else ""
    stops = [
        f"The {row.entry_count} serial number{'s' if row.entry_count != 1 else ''} it lists stop being checked: "
        f"a certificate '{row.issuer_display}' issued and revoked in it is no longer refused for that.",
        "Where revocation is checked by CRL and no other CRL of this CA is stored, the status of every "
        'certificate it issued becomes unknown, and the policy\'s "when unknown" applies (refuse, or allow).',
    ]
    return confirm(
        request,
        title=f"Remove a {kind}",
        question=f"Remove the {kind}{number} of '{row.issuer_display}' (this update "
        f"{row.this_update:%Y-%m-%d %H:%M} UTC)?",
        consequence=" ".join(stops),
        button="Remove",
        cancel_url=reverse(PAGE) + "#crls",
    )


@admin_required
@require_POST
def fetch(request):
    results = crls.fetch_crls(request.user)
    if not results:
        messages.info(
            request, "No certificate in the stores or on a profile names an http or https CRL distribution point."
        )
    for result in results:
        say = FETCHED.get(result.status, messages.error)
        say(request, f"{FETCH_WORDS.get(result.status, result.status)}: {result.url}: {result.message}")
    return redirect(reverse(PAGE) + "#crls")
