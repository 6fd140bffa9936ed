"""The Files pages: an end user's home folder over HTTPS (and any user's, for administrators),
streamed downloads and uploads, and the administrators' list of transfers."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header, urlencode
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from certs import reports, self_service
from certs.models import Credential
from signon import session
from users.forms import event_key_text
from users.models import Interface
from users.pages import admin_required, client_address, confirm, user_or_404

from . import flows
from .forms import NewFolderForm, PathForm, TransferFilterForm
from .homes import READ_CHUNK, PathRefused, display
from .models import Direction, Result, Transfer
from .uploads import HomeUploadHandler


def _owner(request, username):
    """Whose folder: the signed-on user's own, or (at the /files/user/NAME/ pages, which are for
    administrators only) the named user's."""
    if username is None:
        return request.user
    if not request.user.is_admin:
        raise PermissionDenied("Only administrators open users' folders by name.")
    return user_or_404(username)


def _urls(request, owner) -> dict:
    own = owner.pk == request.user.pk
    names = ("home", "download", "upload", "folder", "delete")
    return {n: reverse(f"files:{n}") if own else reverse(f"files:user-{n}", args=[owner.username]) for n in names}


def _path(request, source) -> tuple[str, ...] | None:
    form = PathForm(source)
    if not form.is_valid():
        messages.error(request, " ".join(form.errors["path"]))
        return None
    return form.cleaned_data["path"]


def _back(urls: dict, parts) -> str:
    return urls["home"] + (f"?{urlencode({'path': '/'.join(parts)})}" if parts else "")


@login_required
@require_GET
def browse(request, username=None):
    owner = _owner(request, username)
    urls = _urls(request, owner)
    parts = _path(request, request.GET)
    if parts is None:
        return redirect(urls["home"])
    home = flows.home(owner)
    try:
        if home.kind(parts) != "folder":
            raise Http404(f"There is no folder {display(parts)}.")
        entries = home.entries(parts)
    except PathRefused as exc:
        messages.error(request, str(exc))
        return redirect(urls["home"])
    context = {
        "owner": owner,
        "own": owner.pk == request.user.pk,
        "urls": urls,
        "parts": parts,
        "here": "/".join(parts),
        "crumbs": [(name, "/".join(parts[: i + 1])) for i, name in enumerate(parts)],
        "entries": [(entry, "/".join((*parts, entry.name))) for entry in entries],
        "folder_form": NewFolderForm(initial={"path": "/".join(parts)}),
    }
    if context["own"]:
        context.update(_about_you(request, owner))
    return render(request, "files/browse.html", context)


def _about_you(request, user) -> dict:
    """How the user signed on, their certificates and when they expire."""
    presented = request.client_certificate.cert
    how = session.how(request)
    credentials = Credential.objects.filter(user=user).select_related("certificate")
    return {
        **session.in_words(request),
        "credentials": [(c, self_service.refusal(c, how)) for c in credentials],
        "self_renewal": self_service.setting(),
        "presented": presented,
        "expiry_warnings": reports.own_expiring(user, presented),
        "now": timezone.now(),
        "ftps_address": _ftps_address(),
    }


def _ftps_address() -> str:
    bind = settings.MFT_FTPS_BIND
    if bind is None:
        return ""
    host, port = bind
    host = "localhost" if host in ("127.0.0.1", "::1", "0.0.0.0", "::") else host  # noqa: S104
    return f"ftp://{host}:{port}/, explicit TLS"


class _Download:
    """The file's bytes for the response, hashed as they go out; recorded when the server is done
    with the response (complete only when the last byte was handed over)."""

    def __init__(self, file, record):
        self.file, self.record, self.complete, self.closed = file, record, False, False

    def __iter__(self):
        while chunk := self.file.read(READ_CHUNK):
            yield chunk
        self.complete = True

    def close(self):
        if self.closed:  # servers and test clients may close a response more than once
            return
        self.closed = True
        self.file.close()
        self.record(self.file, Result.COMPLETE if self.complete else Result.ABORTED)


@login_required
@require_GET
def download(request, username=None):
    owner = _owner(request, username)
    parts = _path(request, request.GET)
    if not parts:
        return redirect(_urls(request, owner)["home"])
    try:
        file = flows.home(owner).open_read(parts)
    except PathRefused as exc:
        messages.error(request, str(exc))
        return redirect(_back(_urls(request, owner), parts[:-1]))
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        raise Http404(f"There is no file {display(parts)}.") from None
    size = file.size
    started, address = timezone.now(), client_address(request)

    def record(done, result):
        flows.record_transfer(
            owner,
            interface=Interface.HTTPS,
            direction=Direction.DOWNLOAD,
            parts=parts,
            size=done.transferred,
            sha256=done.sha256(),
            result=result,
            started_at=started,
            source_address=address,
            reason="" if result == Result.COMPLETE else "the client stopped reading",
            actor=request.user,
        )

    response = StreamingHttpResponse(_Download(file, record), content_type="application/octet-stream")
    response["Content-Length"] = str(size)
    response["Content-Disposition"] = content_disposition_header(True, parts[-1])
    response["Cache-Control"] = "private, no-store"
    return response


@csrf_exempt  # the CSRF check reads the body: it runs below, once the upload handler is in place
@login_required
@require_POST
def upload(request, username=None):
    owner = _owner(request, username)
    urls = _urls(request, owner)
    parts = _path(request, request.GET)
    if parts is None or flows.home(owner).kind(parts) != "folder":
        return _upload_answer(request, urls, parts or (), [], "There is no such folder to upload into.")
    if "HTTP_X_CSRFTOKEN" not in request.META and "HTTP_ORIGIN" not in request.META:
        # The CSRF check would read the whole body (and so write the files) before it could fail:
        # without the token in a header, the Origin header must let it fail first.
        return _upload_answer(request, urls, parts, [], "Uploads need the X-CSRFToken or the Origin header.")
    handler = HomeUploadHandler(request, owner, parts, request.user, client_address(request))
    request.upload_handlers = [handler]
    return _upload_checked(request, urls, parts, handler)


@csrf_protect
def _upload_checked(request, urls, parts, handler):
    try:
        request.POST  # noqa: B018 - reading the body runs the upload through the handler
    except Exception as exc:  # a truncated or malformed body, a client gone mid-upload
        handler.abandon()
        return _upload_answer(request, urls, parts, handler.results, f"The upload did not arrive whole ({exc}).")
    if not handler.results:
        return _upload_answer(request, urls, parts, [], "Choose one or more files to upload.")
    return _upload_answer(request, urls, parts, handler.results)


def _upload_answer(request, urls, parts, results, problem: str = ""):
    if request.headers.get("Accept", "").startswith("application/json"):
        body = {"files": [r.as_dict() for r in results], "error": problem or None}
        return JsonResponse(body, status=400 if problem else 200)
    for result in results:
        if result.error:
            messages.error(request, f"{result.name}: {result.error}")
        else:
            messages.success(request, f"Uploaded {result.name} ({result.size:,} bytes).")
    if problem:
        messages.error(request, problem)
    return redirect(_back(urls, parts))


@login_required
@require_POST
def new_folder(request, username=None):
    owner = _owner(request, username)
    urls = _urls(request, owner)
    form = NewFolderForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            messages.error(request, " ".join(errors))
        return redirect(urls["home"] + (f"?{urlencode({'path': request.POST.get('path', '')})}"))
    parts = form.cleaned_data["path"]
    try:
        message = flows.make_folder(
            owner,
            (*parts, form.cleaned_data["name"]),
            interface=Interface.HTTPS,
            source_address=client_address(request),
            actor=request.user,
        )
    except FileExistsError:
        messages.error(request, f"There is already something named '{form.cleaned_data['name']}' here.")
    except (PathRefused, OSError) as exc:
        messages.error(request, _why(exc))
    else:
        messages.success(request, message)
    return redirect(_back(urls, parts))


@login_required
@require_http_methods(["GET", "POST"])
def delete(request, username=None):
    """Delete a file or an empty folder, after asking."""
    owner = _owner(request, username)
    urls = _urls(request, owner)
    parts = _path(request, request.POST if request.method == "POST" else request.GET)
    if not parts:
        if parts is not None:
            messages.error(request, "The home folder itself cannot be deleted.")
        return redirect(urls["home"])
    home = flows.home(owner)
    kind = home.kind(parts)
    if kind not in ("file", "folder"):
        messages.error(request, f"There is no file or folder {display(parts)}.")
        return redirect(_back(urls, parts[:-1]))
    if request.method == "GET":
        return confirm(
            request,
            title=f"Delete {parts[-1]}",
            question=f"Delete the {kind} {display(parts)}"
            + ("" if owner == request.user else f" from {owner}'s folder")
            + "?",
            consequence="It cannot be brought back." if kind == "file" else "Only an empty folder can be deleted.",
            button="Delete",
            cancel_url=_back(urls, parts[:-1]),
            hidden={"path": "/".join(parts)},
        )
    action = flows.delete_file if kind == "file" else flows.remove_folder
    try:
        message = action(
            owner, parts, interface=Interface.HTTPS, source_address=client_address(request), actor=request.user
        )
    except (PathRefused, OSError) as exc:
        messages.error(request, _why(exc))
    else:
        messages.success(request, message)
    return redirect(_back(urls, parts[:-1]))


def _why(exc: Exception) -> str:
    if isinstance(exc, PathRefused):
        return str(exc)
    if getattr(exc, "errno", None) == 39:  # ENOTEMPTY
        return "The folder is not empty; delete what is in it first."
    return f"That could not be done: {getattr(exc, 'strerror', None) or exc}."


@admin_required
@require_GET
def transfers(request):
    form = TransferFilterForm(request.GET)
    page = None
    if form.is_valid():
        found = Transfer.objects.matching(**form.filters())
        page = flows.transfer_page(found, after=form.cleaned_data["after"], before=form.cleaned_data["before"])
    context = {
        "form": form,
        "page": page,
        "next_after": event_key_text(page.next_key) if page and page.next_key else None,
        "previous_before": event_key_text(page.previous_key) if page and page.previous_key else None,
    }
    return render(request, "files/transfers.html", context)
