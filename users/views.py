"""Admin pages for users, sign-on policies, interface defaults and the audit log.

Each view: check access, validate with a form, call the use case in ``flows``, report the
outcome with a message and redirect; otherwise render the page.
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.core.exceptions import ValidationError
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.module_loading import import_string
from django.views.decorators.http import require_GET, require_http_methods

from audit import log

from . import flows, forms
from .models import Interface, SignOnMode, User
from .pages import admin_required, client_address, confirm, user_or_404

POLICY_TITLES = {Interface.HTTPS: "Edit HTTP Policy", Interface.FTPS: "Edit FTP Policy"}


def mode_change_impact(user, interface: str, mode: str):
    """What changing a user's sign-on mode would stop (``.stops``, ``.certificates``).

    Judging that needs the certificates the app knows, which the app above this one holds:
    settings name the function (``MODE_CHANGE_IMPACT``), as Django's own settings name
    pluggable views and backends, so this app imports nothing from above.
    """
    return import_string(settings.MODE_CHANGE_IMPACT)(user, interface, mode)


@admin_required
@require_GET
def user_list(request):
    form = forms.UserSearchForm(request.GET)
    ctx = {"form": form, "page": None}
    if form.is_valid():
        query = form.cleaned_data["q"]
        page = flows.user_page(
            query, after=form.cleaned_data["after"] or None, before=form.cleaned_data["before"] or None
        )
        flows.count_pending(page.items)
        ctx.update(
            page=page,
            query=query,
            # Counting the whole table is one cheap index count; counting matches would read every row.
            total=None if query else User.objects.count(),
            next_after=page.next_key[0] if page.next_key else None,
            previous_before=page.previous_key[0] if page.previous_key else None,
        )
    return render(request, "users/list.html", ctx)


@admin_required
@require_GET
def user_suggestions(request):
    """Users whose username or full name holds what was typed, for pickers: at most ten."""
    query = (request.GET.get("q") or "")[:150]
    found = flows.search_users(query)[:10] if query.strip() else []
    return JsonResponse({"users": [{"username": u.username, "full_name": u.full_name} for u in found]})


@admin_required
@require_http_methods(["GET", "POST"])
def user_create(request):
    if request.method == "POST":
        form = forms.CreateUserForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                user = flows.create_user(
                    data["username"],
                    request.user,
                    password=data["password1"] or None,
                    full_name=data["full_name"],
                    email=data["email"],
                    is_admin=data["is_admin"],
                    source_address=client_address(request),
                )
            except ValidationError as error:
                form.add_flow_error(error)
            else:
                messages.success(request, f"Created {'administrator' if user.is_admin else 'user'} '{user.username}'.")
                return redirect("users:detail", user.username)
    else:
        form = forms.CreateUserForm()
    return render(request, "users/create.html", {"form": form})


@admin_required
@require_GET
def user_detail(request, username):
    user = user_or_404(username)
    ctx = {
        "user_obj": user,
        "https_mode": SignOnMode(user.https_mode).label,
        "ftps_mode": SignOnMode(user.ftps_mode).label,
        "credential_count": user.credentials.count(),
        "tank_count": user.tank_entries.count(),
    }
    return render(request, "users/detail.html", ctx)


@admin_required
@require_http_methods(["GET", "POST"])
def user_edit(request, username):
    user = user_or_404(username)
    if request.method == "POST":
        form = forms.EditUserForm(request.POST)
        if form.is_valid():
            try:
                message = flows.update_user(
                    user, request.user, source_address=client_address(request), **form.cleaned_data
                )
            except ValidationError as error:
                form.add_flow_error(error)
            else:
                messages.success(request, message)
                return redirect("users:detail", user.username)
    else:
        form = forms.EditUserForm(initial=forms.EditUserForm.initial_for(user))
    return render(request, "users/edit.html", {"form": form, "user_obj": user})


@admin_required
@require_http_methods(["GET", "POST"])
def user_delete(request, username):
    user = user_or_404(username)
    if request.method == "POST":
        try:
            message = flows.delete_user(user, request.user, client_address(request))
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
            return redirect("users:detail", user.username)
        messages.success(request, message)
        return redirect("users:list")
    gone = flows.what_goes_with(user)
    return confirm(
        request,
        title=f"Delete user {user.username}",
        question=f"Delete {user.username}?",
        consequence=("With them go: " + " ".join(gone) if gone else "Nothing else is kept for this user.")
        + " The audit log keeps every entry about them, by name.",
        button=f"Delete {user.username}",
        cancel_url=reverse("users:detail", args=[user.username]),
    )


@admin_required
@require_http_methods(["GET", "POST"])
def user_password(request, username):
    user = user_or_404(username)
    if request.method == "POST":
        form = forms.PasswordForm(user, request.POST)
        if form.is_valid():
            try:
                message = flows.set_password(
                    user, form.cleaned_data["new_password1"], request.user, client_address(request)
                )
            except ValidationError as error:
                form.add_error(None, error)
            else:
                if user.pk == request.user.pk:
                    update_session_auth_hash(request, user)  # an admin changing their own password stays signed in
                messages.success(request, message)
                return redirect("users:detail", user.username)
    else:
        form = forms.PasswordForm(user)
    return render(request, "users/password.html", {"form": form, "user_obj": user})


@admin_required
@require_http_methods(["GET", "POST"])
def user_policy(request, username, interface):
    if interface not in Interface.values:
        raise Http404(f"There is no interface '{interface}'; the interfaces are HTTPS and FTPS.")
    user = user_or_404(username)
    if request.method == "POST":
        form = forms.PolicyForm(request.POST)
        if form.is_valid() and request.POST.get("confirm") != "yes":
            impact = mode_change_impact(user, interface, form.cleaned_data["mode"])
            if user.pk == request.user.pk and form.cleaned_data["mode"] != user.sign_on_mode(interface):
                impact.stops.insert(0, "This is you: the new mode applies to your own next sign-in.")
            if impact.stops or impact.certificates:
                return _confirm_mode_change(request, user, interface, form.cleaned_data["mode"], impact)
        if form.is_valid():
            before = user.sign_on_mode(interface)
            try:
                message = flows.set_sign_on_mode(
                    user, interface, form.cleaned_data["mode"], request.user, client_address(request)
                )
            except ValidationError as error:
                form.add_error(None, error)
            else:
                if user.sign_on_mode(interface) == before:
                    messages.info(request, message)
                else:
                    messages.success(request, message)
                return redirect("users:detail", user.username)
    else:
        form = forms.PolicyForm(initial={"mode": user.sign_on_mode(interface)})
    ctx = {
        "form": form,
        "user_obj": user,
        "title": POLICY_TITLES[interface],
        "interface_label": Interface(interface).label,
    }
    return render(request, "users/policy.html", ctx)


def _confirm_mode_change(request, user, interface, mode, impact):
    label = SignOnMode(mode).label
    return confirm(
        request,
        title=f"{POLICY_TITLES[interface]}: {user.username}",
        question=f"Set {user.username}'s {Interface(interface).label} sign-on mode to \u201c{label}\u201d?",
        button="Change the mode",
        button_style="warning",
        cancel_url=reverse("users:policy", args=[user.username, interface]),
        hidden={"mode": mode, "confirm": "yes"},
        impact=impact.certificates,
        stops=impact.stops,
    )


@admin_required
@require_http_methods(["GET", "POST"])
def interface_defaults(request):
    if request.method == "POST":
        form = forms.DefaultsForm(request.POST)
        if form.is_valid():
            current = flows.interface_defaults()
            said = [
                flows.set_interface_default(interface, mode, request.user, client_address(request))
                for interface, mode in form.modes().items()
                if current[interface] != mode
            ]
            if said:
                messages.success(request, " ".join(said))
            else:
                messages.info(request, "The defaults were already set that way; nothing changed.")
            return redirect("users:defaults")
    else:
        form = forms.DefaultsForm(initial=forms.DefaultsForm.initial_now())
    return render(request, "users/defaults.html", {"form": form})


@admin_required
@require_http_methods(["GET", "POST"])
def interface_defaults_apply(request):
    if request.method == "POST":
        form = forms.ApplyDefaultsForm(request.POST)
        if form.is_valid():
            try:
                changed = flows.apply_defaults_to_all(request.user, client_address(request))
            except ValidationError as error:
                messages.error(request, " ".join(error.messages))
                return redirect("users:defaults")
            summary = ", ".join(f"{Interface(i).label}: {n:,} changed" for i, n in changed.items())
            messages.success(request, f"Applied the interface defaults to all existing users ({summary}).")
            return redirect("users:defaults")
        for error in form.non_field_errors():
            messages.error(request, error)
    # The confirmation always carries the defaults it shows figures for.
    form = forms.ApplyDefaultsForm(initial=forms.DefaultsForm.initial_now())
    plan = [
        {
            "interface": Interface(interface).label,
            "mode": SignOnMode(info["mode"]).label,
            "changes": [(SignOnMode(old).label, count) for old, count in info["from"].items()],
            "total": sum(info["from"].values()),
        }
        for interface, info in flows.defaults_preview().items()
    ]
    ctx = {"form": form, "plan": plan, "total": sum(item["total"] for item in plan)}
    return render(request, "users/defaults_apply.html", ctx)


@admin_required
@require_GET
def audit_log(request):
    form = forms.AuditFilterForm(request.GET, actions=log.actions())
    page = None
    if form.is_valid():
        found = log.events(**form.filters())
        page = log.page(found, after=form.cleaned_data["after"], before=form.cleaned_data["before"])
    ctx = {
        "form": form,
        "page": page,
        "next_after": forms.event_key_text(page.next_key) if page and page.next_key else None,
        "previous_before": forms.event_key_text(page.previous_key) if page and page.previous_key else None,
    }
    return render(request, "users/audit.html", ctx)
