from django.urls import include, path

urlpatterns = [
    path("", include("api.urls")),
    path("", include("signon.urls")),
    path("", include("users.urls")),
    path("", include("certs.urls")),
    path("", include("files.urls")),
]

handler404 = "signon.views.page_not_found"
