from django.urls import path

from . import certificates, views

app_name = "files"

urlpatterns = [
    path("files/", views.browse, name="home"),
    path("files/download", views.download, name="download"),
    path("files/upload", views.upload, name="upload"),
    path("files/folder", views.new_folder, name="folder"),
    path("files/delete", views.delete, name="delete"),
    path("files/user/<str:username>/", views.browse, name="user-home"),
    path("files/user/<str:username>/download", views.download, name="user-download"),
    path("files/user/<str:username>/upload", views.upload, name="user-upload"),
    path("files/user/<str:username>/folder", views.new_folder, name="user-folder"),
    path("files/user/<str:username>/delete", views.delete, name="user-delete"),
    path("transfers/", views.transfers, name="transfers"),
    # The user's own certificates: renewing one that the org CA issued them.
    path("me/certificates/<int:pk>/renew/", certificates.renew, name="self-renew"),
    path("me/certificates/renewed/<str:token>/", certificates.renewed, name="self-renewed"),
    path("me/certificates/renewed/<str:token>/download", certificates.download, name="self-renewed-download"),
]
