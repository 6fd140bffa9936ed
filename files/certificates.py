"""An end user's own certificates: renewing one that the org CA issued them (self-service)."""

import base64
import secrets
import time

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache

from certs import flows, issuing, self_service
from certs.forms import SelfRenewForm
from certs.models import Credential
from certs.views import safe_filename
from signon import session
from users.pages import client_address, found_or_404

# A renewal's file waits in the session for one download, this long at most.
DOWNLOAD_SECONDS = 15 * 60


def _home():
    return reverse("files:home") + "#your-certificates"


@never_cache
@login_required
def renew(request, pk):
    credential = found_or_404(
        Credential.objects.filter(pk=pk, user=request.user).select_related("certificate"),
        "There is no such certificate on your profile.",
    )
    how = session.how(request)
    problem = self_service.refusal(credential, how)
    if problem:
        messages.error(request, problem)
        return redirect(_home())
    form = SelfRenewForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        password = issuing.generate_password() if data["csr"] is None else None
        try:
            renewed = self_service.renew(
                request.user,
                credential.pk,
                how,
                csr=data["csr"],
                key_type=data["key_type"],
                password=password,
                pkcs12_format=data["pkcs12_format"],
                source_address=client_address(request),
            )
        except flows.FlowError as exc:
            form.add_error(None, str(exc))
        else:
            token = secrets.token_urlsafe(18)
            name = safe_filename(renewed.certificate.common_name or request.user.username, "certificate")
            body = renewed.pkcs12 if renewed.pkcs12 is not None else renewed.pem.encode()
            request.session[f"renewed:{token}"] = {
                "user": request.user.pk,
                "until": time.time() + DOWNLOAD_SECONDS,
                "file": base64.b64encode(body).decode(),
                "filename": name + (".p12" if renewed.pkcs12 is not None else ".pem"),
                "password": password,
                "message": renewed.message,
                "waiting": renewed.waiting,
                "pem": renewed.pem,
            }
            return redirect("files:self-renewed", token)
    status = 400 if request.method == "POST" else 200
    context = {"credential": credential, "form": form, "mode": self_service.setting()}
    return render(request, "files/self_renew.html", context, status=status)


@never_cache
@login_required
def renewed(request, token):
    waiting = request.session.get(f"renewed:{token}")
    if not waiting or waiting.get("user") != request.user.pk:
        messages.info(request, "That renewal was shown once; its password is not kept.")
        return redirect(_home())
    password = waiting.pop("password", None)
    request.session[f"renewed:{token}"] = waiting
    context = {
        **waiting,
        "password": password,
        "download_url": reverse("files:self-renewed-download", args=[token]),
        "minutes": DOWNLOAD_SECONDS // 60,
    }
    return render(request, "files/self_renewed.html", context)


@never_cache
@login_required
def download(request, token):
    waiting = request.session.pop(f"renewed:{token}", None)
    if not waiting or waiting.get("user") != request.user.pk or waiting.get("until", 0) < time.time():
        messages.error(
            request,
            f"That download is no longer available: a renewal can be downloaded once, within "
            f"{DOWNLOAD_SECONDS // 60} minutes.",
        )
        return redirect(_home())
    kind = "application/x-pkcs12" if waiting["filename"].endswith(".p12") else "application/x-pem-file"
    response = HttpResponse(base64.b64decode(waiting["file"]), content_type=kind)
    response["Content-Disposition"] = f'attachment; filename="{waiting["filename"]}"'
    return response
