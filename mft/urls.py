from django.urls import include, path

urlpatterns = [
    path("", include("api.urls")),
    path("", include("signon.urls")),
    path("", include("users.urls")),
    path("", include("certs.urls")),
]
