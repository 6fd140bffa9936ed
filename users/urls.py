from django.urls import path

from . import token_views, views

app_name = "users"

urlpatterns = [
    path("users/", views.user_list, name="list"),
    path("users/new/", views.user_create, name="create"),
    path("users/suggest.json", views.user_suggestions, name="suggest"),
    path("user/<str:username>/", views.user_detail, name="detail"),
    path("user/<str:username>/edit/", views.user_edit, name="edit"),
    path("user/<str:username>/password/", views.user_password, name="password"),
    path("user/<str:username>/delete/", views.user_delete, name="delete"),
    path("user/<str:username>/policy/<str:interface>/", views.user_policy, name="policy"),
    path("settings/defaults/", views.interface_defaults, name="defaults"),
    path("settings/defaults/apply/", views.interface_defaults_apply, name="defaults-apply"),
    path("audit/", views.audit_log, name="audit"),
    path("account/tokens/", token_views.own_tokens, name="own-tokens"),
    path("account/tokens/<int:pk>/revoke/", token_views.revoke_own_token, name="revoke-own-token"),
    path("user/<str:username>/tokens/", token_views.user_tokens, name="tokens"),
    path("user/<str:username>/tokens/<int:pk>/revoke/", token_views.revoke_token, name="revoke-token"),
]
