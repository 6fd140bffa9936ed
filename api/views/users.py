"""Users, their sign-on policies, and who the caller is."""

from django.db import transaction
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.reverse import reverse

from signon import session
from users import flows
from users.forms import CreateUserForm, EditUserForm, PasswordForm, PolicyForm
from users.models import Interface, User

from .. import paging, serializers
from ..auth import Anyone, IsAdministratorOrSelf
from ..base import ApiView, validated
from ..idempotency import idempotent
from ..problems import Problem
from . import IDEMPOTENCY_KEY, answers

TAG = ["Users"]


class WhoAmI(ApiView):
    permission_classes = [Anyone]

    @extend_schema(
        operation_id="whoami",
        tags=["Signing on"],
        summary="Who the request is signed on as, and how",
        responses=answers({200: serializers.WhoAmI}, 401, public=True),
    )
    def get(self, request):
        user = request.user
        if not user.is_authenticated:
            return Response({"authenticated": False, "username": None, "method": None, "rule": None, "is_admin": False})
        if request.auth is not None and not isinstance(request.auth, session.How):
            method, rule = "token", None
        else:  # by certificate for this request, or a browser's session
            how = request.auth or session.how(request._request)
            method, rule = how.method, how.rule
        return Response(
            {
                "authenticated": True,
                "username": user.username,
                "method": method,
                "rule": rule,
                "is_admin": user.is_admin,
            }
        )


class Users(ApiView):
    @extend_schema(
        operation_id="users_list",
        tags=TAG,
        summary="List users, in username order; search by username, full name or email",
        parameters=[
            OpenApiParameter("search", str, description="Part of a username, full name or email."),
            OpenApiParameter("cursor", str, description="From a previous page's next or previous link."),
            OpenApiParameter("limit", int, description="Users per page, 1 to 500 (default 50)."),
        ],
        responses=answers({200: serializers.UserPage}, 400),
    )
    def get(self, request):
        search = request.query_params.get("search", "")
        if len(search) > 200 or "\x00" in search:
            raise Problem(400, "A search has at most 200 characters and no NUL.", errors=[_error("search")])
        size = _limit(request, default=50, most=500)
        page = flows.user_page(search, size=size, **_single(paging.bounds(request, (str,))))
        return Response({"results": [flows.user_as_dict(u) for u in page.items], **paging.links(request, page)})

    @extend_schema(
        operation_id="users_create",
        tags=TAG,
        summary="Create a user, with the org's default sign-on modes",
        request=serializers.UserCreate,
        parameters=[IDEMPOTENCY_KEY],
        responses=answers({201: serializers.User}, 400, 409, 422),
    )
    @idempotent
    def post(self, request):
        data = self.checked(serializers.UserCreate)
        password = data.pop("password", "") or ""
        form = validated(
            CreateUserForm,
            {**data, "password1": password, "password2": password},
            fields={"password1": "password", "password2": "password"},
        )
        user = flows.create_user(
            form["username"],
            request.user,
            password=password or None,
            full_name=form["full_name"],
            email=form["email"],
            is_admin=form["is_admin"],
            source_address=self.address,
        )
        location = reverse("api:user", args=[user.username], request=request)
        return Response(flows.user_as_dict(user), status=status.HTTP_201_CREATED, headers={"Location": location})


class UserDetail(ApiView):
    permission_classes = [IsAdministratorOrSelf]

    @extend_schema(
        operation_id="users_read",
        tags=TAG,
        summary="One user (an end user may read their own)",
        responses=answers({200: serializers.User}, 404),
    )
    def get(self, request, username):
        return Response(flows.user_as_dict(User.objects.named(username)))

    @extend_schema(
        operation_id="users_update",
        tags=TAG,
        summary="Change a user's full name, email, active or administrator flag",
        request=serializers.UserUpdate,
        responses=answers({200: serializers.User}, 400, 404, 422),
    )
    def patch(self, request, username):
        user = User.objects.named(username)
        changes = self.checked(serializers.UserUpdate)
        form = validated(EditUserForm, {**EditUserForm.initial_for(user), **changes})
        flows.update_user(user, request.user, source_address=self.address, **{name: form[name] for name in changes})
        user.refresh_from_db()
        return Response(flows.user_as_dict(user))

    @extend_schema(
        operation_id="users_delete",
        tags=TAG,
        summary="Delete a user with their profile entries, holding-tank entries and home folder; the audit log "
        "keeps every entry about them",
        description="Refused (422) for yourself, and for the last administrator who can sign in. "
        "GET deletion/ first to see what goes with them.",
        responses=answers({200: serializers.Message}, 404, 422),
    )
    def delete(self, request, username):
        user = User.objects.named(username)
        return Response({"message": flows.delete_user(user, request.user, self.address)})


class DeletionPreview(ApiView):
    @extend_schema(
        operation_id="users_deletion_preview",
        tags=TAG,
        summary="What deleting a user would remove with them, and whether it would be refused; changes nothing",
        responses=answers({200: serializers.DeletionPreview}, 404),
    )
    def get(self, request, username):
        preview = flows.deletion_preview(User.objects.named(username), request.user)
        return Response(
            {
                "username": preview.username,
                "removed": preview.removed,
                **{name: preview.counts.get(name, 0) for name in serializers.DeletionPreview.COUNTS},
                "refused": preview.refused,
            }
        )


class Deactivate(ApiView):
    @extend_schema(
        operation_id="users_deactivate",
        tags=TAG,
        summary="Deactivate a user: nothing signs them on until they are reactivated (PATCH is_active)",
        request=None,
        responses=answers({200: serializers.User}, 404, 422),
    )
    def post(self, request, username):
        user = User.objects.named(username)
        flows.update_user(user, request.user, source_address=self.address, is_active=False)
        user.refresh_from_db()
        return Response(flows.user_as_dict(user))


class SetPassword(ApiView):
    @extend_schema(
        operation_id="users_set_password",
        tags=TAG,
        summary="Set a user's password",
        request=serializers.Password,
        responses=answers({200: serializers.Message}, 400, 404, 422),
    )
    def post(self, request, username):
        user = User.objects.named(username)
        password = self.checked(serializers.Password)["password"]
        validated(
            PasswordForm,
            {"new_password1": password, "new_password2": password},
            fields={"new_password1": "password", "new_password2": "password"},
            user=user,
        )
        return Response({"message": flows.set_password(user, password, request.user, self.address)})


class Policies(ApiView):
    permission_classes = [IsAdministratorOrSelf]

    @extend_schema(
        operation_id="policies_read",
        tags=TAG,
        summary="A user's sign-on mode for HTTPS and for FTPS",
        responses=answers({200: serializers.Policies}, 404),
    )
    def get(self, request, username):
        user = User.objects.named(username)
        return Response({"https": user.https_mode, "ftps": user.ftps_mode})


class PolicyDetail(ApiView):
    @extend_schema(
        operation_id="policies_set",
        tags=TAG,
        summary="Set a user's sign-on mode for one interface (https or ftps)",
        request=serializers.Policy,
        responses=answers({200: serializers.PolicyResult}, 400, 404, 422),
    )
    def put(self, request, username, interface):
        if interface not in Interface.values:
            raise Problem(404, f"There is no interface '{interface}'; the interfaces are https and ftps.")
        user = User.objects.named(username)
        mode = validated(PolicyForm, self.checked(serializers.Policy))["mode"]
        with transaction.atomic():
            message = flows.set_sign_on_mode(user, interface, mode, request.user, self.address)
        return Response({"interface": interface, "mode": mode, "message": message})


def _error(field: str) -> dict:
    return {"field": field, "pointer": None, "detail": "Not a usable value."}


def _limit(request, *, default: int, most: int) -> int:
    text = request.query_params.get("limit")
    if text is None:
        return default
    if not text.isdigit() or not 1 <= int(text) <= most:
        raise Problem(400, f"limit is a whole number from 1 to {most}.", errors=[_error("limit")])
    return int(text)


def _single(bounds: dict) -> dict:
    """The users page keys on the username key alone."""
    return {name: key[0] if key is not None else None for name, key in bounds.items()}
