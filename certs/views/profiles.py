"""The Edit SSL Client Certificates page of each user: current certificates, add, import, create
new, and the user's holding tank."""

import base64
import secrets
import time

from cryptography.hazmat.primitives import serialization
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from users.pages import admin_required, client_address, confirm, found_or_404, user_or_404

from .. import flows, issuing, org_ca, tank
from ..forms import AddCredentialForm, ConfirmedCertificatesForm, CreateCertificateForm, ProfileImportForm
from ..models import Certificate, Credential, CredentialKind, OrgCA, Store, StoreEntry, TankEntry
from . import certificate_or_404, safe_filename

# A PKCS#12 made by "Create New" waits in the session for one download, this long at most.
DOWNLOAD_SECONDS = 15 * 60


def _page_url(user) -> str:
    return reverse("certs:edit-client-certs", args=[user.username])


def _render_page(request, user, status=200, **forms):
    forms.setdefault("add_form", AddCredentialForm())
    forms.setdefault("import_form", ProfileImportForm())
    forms.setdefault("create_form", CreateCertificateForm(initial={"cn": user.username, "once": _once_token(request)}))
    if forms["create_form"].is_bound:  # shown again after a mistake: a fresh token for the next try
        forms["create_form"].data = forms["create_form"].data.copy()
        forms["create_form"].data["once"] = _once_token(request)
    context = {
        "user_obj": user,
        "credentials": Credential.objects.filter(user=user).select_related("certificate").order_by("kind", "value"),
        "tank": tank.pending(user),
        "org_ca": OrgCA.active(),
        "approved_count": StoreEntry.objects.filter(store=Store.APPROVED).count(),
        **forms,
    }
    return render(request, "certs/edit_client_certs.html", context, status=status)


@admin_required
def edit_client_certs(request, username):
    return _render_page(request, user_or_404(username))


@admin_required
@require_POST
def add_credential(request, username):
    user = user_or_404(username)
    form = AddCredentialForm(request.POST)
    if not form.is_valid():
        return _render_page(request, user, status=400, add_form=form)
    kind, value = form.cleaned_data["kind"], form.cleaned_data["value"]
    add = flows.add_thumbprint if kind == CredentialKind.THUMBPRINT else flows.add_cn
    try:
        credential, added = add(
            user, value, request.user, source_address=client_address(request), allow_shared=sharing_allowed(request)
        )
    except flows.SharedEntry as exc:
        hidden = {"kind": kind, "value": value}
        return confirm_sharing(request, exc, f"Add it to {user.username}'s profile", hidden, _page_url(user))
    except flows.FlowError as exc:
        form.add_error("value", str(exc))
        return _render_page(request, user, status=400, add_form=form)
    what = f"{credential.kind_phrase} {credential.shown_value}"
    if added:
        messages.success(request, f"Added {what} to {user.username}'s profile.")
        if kind == CredentialKind.CN and not StoreEntry.objects.filter(store=Store.APPROVED).exists():
            messages.warning(
                request,
                "The approved CA list is empty: a CN authenticates only with a certificate from an approved CA.",
            )
    else:
        messages.info(request, f"The {what} is already on {user.username}'s profile.")
    return redirect(_page_url(user))


@admin_required
@require_POST
def import_certificates(request, username):
    user = user_or_404(username)
    confirmed = sharing_allowed(request) and request.POST.get("pem")
    form = (ConfirmedCertificatesForm if confirmed else ProfileImportForm)(request.POST, request.FILES)
    if not form.is_valid():
        return _render_page(request, user, status=400, import_form=form)
    certificates, record_as = form.cleaned_data["certificates"], form.cleaned_data["record_as"]
    try:
        imported, skipped = flows.import_to_profile(
            user,
            certificates,
            request.user,
            source_address=client_address(request),
            allow_shared=bool(confirmed),
            record_as=record_as,
        )
    except flows.SharedEntry as exc:
        pem = "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certificates)
        hidden = {"pem": pem, "record_as": record_as}
        return confirm_sharing(request, exc, f"Import into {user.username}'s profile", hidden, _page_url(user))
    messages.success(request, f"Imported {len(imported)} certificate{'s' if len(imported) != 1 else ''}.")
    return render(request, "certs/import_result.html", {"user_obj": user, "results": imported, "skipped": skipped})


@never_cache
@admin_required
@require_POST
def create_certificate(request, username):
    """Create New, then redirect to the result (POST/redirect/GET): reloading the result shows it
    again without issuing anything, and posting the same form twice issues one certificate."""
    user = user_or_404(username)
    if OrgCA.active() is None:
        messages.error(request, "There is no org CA yet: create one on the Trusted CAs page first.")
        return redirect(_page_url(user))
    form = CreateCertificateForm(request.POST)
    if not form.is_valid():
        return _render_page(request, user, status=400, create_form=form)
    if not _use_form_once(request, form.cleaned_data["once"]):
        messages.info(request, "That form was submitted already: nothing more was issued.")
        return redirect(_page_url(user))
    password = issuing.generate_password()
    try:
        issued = org_ca.issue_certificate(
            user,
            request.user,
            password=password,
            cn=form.cleaned_data["cn"],
            days=form.cleaned_data["days"],
            key_type=form.cleaned_data["key_type"],
            source_address=client_address(request),
        )
    except (flows.FlowError, issuing.IssuingError) as exc:
        form.add_error(None, str(exc))
        return _render_page(request, user, status=400, create_form=form)
    token = secrets.token_urlsafe(18)
    filename = safe_filename(issued.certificate.common_name or user.username, "certificate") + ".p12"
    # The password-protected file waits for one download; the password for one showing.
    request.session[f"issued:{token}"] = {
        "p12": base64.b64encode(issued.pkcs12).decode(),
        "filename": filename,
        "user": user.pk,
        "until": time.time() + DOWNLOAD_SECONDS,
        "certificate": issued.certificate.sha256,
        "password": password,
    }
    return redirect("certs:issued", user.username, token)


@never_cache
@admin_required
def issued_certificate(request, username, token):
    """The result of Create New, with the PKCS#12 password shown this once."""
    user = user_or_404(username)
    waiting = request.session.get(f"issued:{token}")
    if not waiting or waiting.get("user") != user.pk or "password" not in waiting:
        messages.info(
            request,
            "The new certificate's password was shown once and is not kept. If it was lost, remove that "
            "certificate and create a new one.",
        )
        return redirect(_page_url(user))
    password = waiting.pop("password")
    request.session[f"issued:{token}"] = waiting
    context = {
        "user_obj": user,
        "certificate": Certificate.objects.get(sha256=waiting["certificate"]),
        "password": password,
        "download_url": reverse("certs:download-issued", args=[user.username, token]),
        "minutes": DOWNLOAD_SECONDS // 60,
    }
    return render(request, "certs/issued.html", context)


def _once_token(request) -> str:
    """A token for one Create New form: the form posts it, and it is good once."""
    token = secrets.token_urlsafe(12)
    request.session["create_once"] = [*request.session.get("create_once", [])[-19:], token]
    return token


def _use_form_once(request, token: str) -> bool:
    pending = request.session.get("create_once", [])
    if token not in pending:
        return False
    pending.remove(token)
    request.session["create_once"] = pending
    return True


@never_cache
@admin_required
def download_issued(request, username, token):
    user = user_or_404(username)
    waiting = request.session.pop(f"issued:{token}", None)
    if not waiting or waiting.get("user") != user.pk or waiting.get("until", 0) < time.time():
        messages.error(
            request,
            "That download is no longer available: each new certificate can be downloaded once, within "
            f"{DOWNLOAD_SECONDS // 60} minutes. Create a new one if it was lost.",
        )
        return redirect(_page_url(user))
    response = HttpResponse(base64.b64decode(waiting["p12"]), content_type="application/x-pkcs12")
    response["Content-Disposition"] = f'attachment; filename="{waiting["filename"]}"'
    return response


@admin_required
def remove_credential(request, username, pk):
    user = user_or_404(username)
    credential = found_or_404(
        Credential.objects.filter(pk=pk, user=user), f"{user.username}'s profile has no certificate entry {pk}."
    )
    if request.method == "POST":
        message = flows.remove_credential(user, credential.pk, request.user, source_address=client_address(request))
        messages.success(request, message)
        return redirect(_page_url(user))
    return confirm(
        request,
        title="Remove a client certificate",
        question=f"Remove {credential.kind_phrase} {credential.shown_value} from {user.username}'s profile?",
        consequence="A certificate that signed on through this entry will no longer authenticate "
        f"{user.username} by it.",
        button="Remove",
        cancel_url=_page_url(user),
    )


@admin_required
def revoke_certificate(request, username, pk):
    """Revoke a certificate the org CA issued (the entry's thumbprint), with a reason; what it
    does is shown first."""
    user = user_or_404(username)
    credential = found_or_404(
        Credential.objects.filter(pk=pk, user=user, kind=CredentialKind.THUMBPRINT).select_related("certificate"),
        f"{user.username}'s profile has no thumbprint entry {pk}.",
    )
    try:
        impact = org_ca.revocation_impact(user, credential.value)
    except flows.FlowError as exc:
        messages.error(request, str(exc))
        return redirect(_page_url(user))
    if request.method == "POST":
        reason = request.POST.get("reason", "unspecified")
        try:
            outcome = org_ca.revoke(
                user, credential.value, request.user, reason=reason, source_address=client_address(request)
            )
        except flows.FlowError as exc:
            messages.error(request, str(exc))
        else:
            for message in outcome.messages:
                messages.success(request, message)
            for warning in outcome.all_warnings():
                messages.warning(request, warning)
        return redirect(_page_url(user))
    return render(
        request,
        "certs/revoke.html",
        {
            "user_obj": user,
            "certificate": impact.certificate,
            "others": impact.others,
            "reasons": [(name, name.replace("-", " ")) for name in org_ca.REVOKE_REASONS],
            "cancel_url": _page_url(user),
        },
    )


@admin_required
@require_POST
def accept_tank_entry(request, username, pk):
    user = user_or_404(username)
    entry = found_or_404(
        TankEntry.objects.filter(pk=pk, user=user), f"{user.username}'s holding tank has no entry {pk}."
    )
    try:
        message = tank.accept_tank_entry(
            entry.pk,
            request.user,
            user=user,
            source_address=client_address(request),
            allow_shared=sharing_allowed(request),
        )
    except flows.SharedEntry as exc:
        return confirm_sharing(request, exc, f"Accept it into {user.username}'s profile", {}, _page_url(user))
    except flows.FlowError as exc:  # e.g. another administrator removed it a moment ago
        messages.error(request, str(exc))
    else:
        messages.success(request, message)
    return redirect(_page_url(user))


@admin_required
def remove_tank_entry(request, username, pk):
    user = user_or_404(username)
    entry = found_or_404(
        TankEntry.objects.filter(pk=pk, user=user), f"{user.username}'s holding tank has no entry {pk}."
    )
    return confirm_tank_removal(request, entry, _page_url(user))


def sharing_allowed(request) -> bool:
    return request.POST.get("allow_shared") == "yes"


def confirm_sharing(request, refusal: flows.SharedEntry, action: str, hidden: dict, cancel_url: str):
    """Ask before an entry that other users' sign-on would share; the form posts back to the
    same page with ``allow_shared`` and what it needs to do the same again."""
    names = ", ".join(dict.fromkeys(o.username for o in refusal.overlaps))
    return confirm(
        request,
        title="An entry other users would share",
        question=f"{action} although it concerns {names} too?",
        consequence=str(refusal).replace(" Nothing was changed.", ""),
        button=f"{action} anyway",
        button_style="warning",
        cancel_url=cancel_url,
        hidden={**hidden, "allow_shared": "yes"},
    )


@admin_required
def remove_presented(request, username, sha256):
    """Remove a presented certificate (its thumbprint and CN entries) from the user's holding tank."""
    user = user_or_404(username)
    certificate = certificate_or_404(sha256)
    if request.method == "POST":
        try:
            messages.success(request, tank.remove_presented(user, certificate, request.user, client_address(request)))
        except flows.FlowError as exc:
            messages.error(request, str(exc))
        return redirect(_page_url(user))
    return confirm(
        request,
        title="Remove a presented certificate",
        question=f"Remove '{certificate.subject_display}' from {user.username}'s holding tank?",
        consequence="Its thumbprint and CN entries both go. If it is presented again it comes back to the tank.",
        button="Remove",
        cancel_url=_page_url(user),
    )


def confirm_tank_removal(request, entry, back_url):
    if request.method == "POST":
        try:
            messages.success(request, tank.remove_tank_entry(entry.pk, request.user, client_address(request)))
        except flows.FlowError as exc:
            messages.error(request, str(exc))
        return redirect(back_url)
    return confirm(
        request,
        title="Remove a holding-tank entry",
        question=f"Remove {entry.kind_phrase} {entry.shown_value} from {entry.owner_phrase}?",
        consequence="If the certificate is presented again it comes back to the tank.",
        button="Remove",
        cancel_url=back_url,
    )
