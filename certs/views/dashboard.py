from django.shortcuts import render

from users.pages import admin_required

from .. import reports


@admin_required
def dashboard(request, signed_on: dict, warnings=()):
    """The administrator's home page (reached through ``/``, which also serves end users);
    ``warnings`` are what sign-on reports about how it is set up."""
    return render(request, "certs/dashboard.html", {**reports.dashboard(), **signed_on, "warnings": warnings})
