"""The org holding tank: certificates that connected but named no user."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from users.pages import admin_required, client_address, found_or_404

from .. import flows, tank
from ..forms import AssignTankEntryForm
from ..models import TankEntry
from .profiles import confirm_sharing, confirm_tank_removal, renewal_choice, renewal_hidden, sharing_allowed


@admin_required
def pending(request):
    """Every presented certificate waiting in any holding tank, users' and the org's."""
    return render(request, "certs/pending.html", {"presented": tank.pending()})


@admin_required
def org_tank(request):
    return _render_org_tank(request)


def _render_org_tank(request, status=200, failed=None, form=None):
    entries = (
        TankEntry.objects.filter(user__isnull=True)
        .select_related("certificate", "renewal_of__user", "renewal_of__certificate")
        .order_by("-last_seen")
    )
    entries = sorted(entries, key=lambda e: e.renewal_of_id is None)  # renewals first
    rows = [{"entry": e, "form": form if failed == e.pk else AssignTankEntryForm(prefix=f"e{e.pk}")} for e in entries]
    return render(request, "certs/org_tank.html", {"rows": rows}, status=status)


@admin_required
@require_POST
def assign_tank_entry(request, pk):
    entry = found_or_404(TankEntry.objects.filter(pk=pk, user__isnull=True), f"The org holding tank has no entry {pk}.")
    form = AssignTankEntryForm(request.POST, prefix=f"e{entry.pk}")
    if not form.is_valid():
        return _render_org_tank(request, status=400, failed=entry.pk, form=form)
    user, as_kind = form.cleaned_data["username"], form.cleaned_data["as_kind"]
    try:
        replace, keep_old_days = renewal_choice(request)
        message = tank.accept_tank_entry(
            entry.pk,
            request.user,
            user=user,
            as_kind=as_kind,
            source_address=client_address(request),
            allow_shared=sharing_allowed(request),
            replace=replace,
            keep_old_days=keep_old_days,
        )
    except flows.SharedEntry as exc:
        hidden = {f"e{entry.pk}-username": user.username, f"e{entry.pk}-as_kind": as_kind, **renewal_hidden(request)}
        return confirm_sharing(request, exc, f"Assign it to {user.username}", hidden, reverse("certs:org-tank"))
    except flows.FlowError as exc:
        form.add_error(None, str(exc))
        return _render_org_tank(request, status=400, failed=entry.pk, form=form)
    messages.success(request, message)
    return redirect("certs:org-tank")


@admin_required
def remove_org_tank_entry(request, pk):
    entry = found_or_404(TankEntry.objects.filter(pk=pk, user__isnull=True), f"The org holding tank has no entry {pk}.")
    return confirm_tank_removal(request, entry, reverse("certs:org-tank"))
