"""API token pages: every signed-in user manages their own tokens; administrators anyone's.

A new token is shown once, on the page that answers the form; only its digest is kept.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from . import tokens
from .forms import TokenForm
from .pages import admin_required, client_address, confirm, user_or_404


def _tokens_page(request, user, *, own: bool, form=None, status=200):
    context = {
        "user_obj": user,
        "own": own,
        "tokens": tokens.tokens_of(user),
        "form": form or TokenForm(),
        "revoke_name": "users:revoke-own-token" if own else "users:revoke-token",
    }
    return render(request, "users/tokens.html", context, status=status)


def _create(request, user, *, own: bool):
    form = TokenForm(request.POST)
    if form.is_valid():
        try:
            token, raw = tokens.create_token(
                user,
                form.cleaned_data["name"],
                request.user,
                expires_days=form.cleaned_data["expires_days"],
                source_address=client_address(request),
            )
        except ValidationError as error:
            form.add_flow_error(error)
        else:
            back = reverse("users:own-tokens") if own else reverse("users:tokens", args=[user.username])
            return render(request, "users/token_created.html", {"token": token, "raw": raw, "back": back})
    return _tokens_page(request, user, own=own, form=form, status=400)


def _revoke(request, user, pk, *, own: bool):
    back = reverse("users:own-tokens") if own else reverse("users:tokens", args=[user.username])
    token = tokens.tokens_of(user).filter(pk=pk).first()
    if token is None:
        messages.error(request, f"{user.username} has no API token with id {pk}.")
        return redirect(back)
    if request.method == "POST":
        messages.success(
            request, tokens.revoke_token(pk, request.user, user=user, source_address=client_address(request))
        )
        return redirect(back)
    return confirm(
        request,
        title="Revoke an API token",
        question=f"Revoke the API token '{token.name}' of {user.username}?",
        consequence="Scripts using it are refused from their next request. This cannot be undone.",
        button="Revoke",
        cancel_url=back,
    )


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def own_tokens(request):
    if request.method == "POST":
        return _create(request, request.user, own=True)
    return _tokens_page(request, request.user, own=True)


@login_required
@require_http_methods(["GET", "POST"])
def revoke_own_token(request, pk):
    return _revoke(request, request.user, pk, own=True)


@never_cache
@admin_required
@require_http_methods(["GET", "POST"])
def user_tokens(request, username):
    user = user_or_404(username)
    if request.method == "POST":
        return _create(request, user, own=False)
    return _tokens_page(request, user, own=False)


@admin_required
@require_http_methods(["GET", "POST"])
def revoke_token(request, username, pk):
    return _revoke(request, user_or_404(username), pk, own=False)
