from django.urls import path, register_converter

from . import doctor_views, trust_views, views


class Sha256Converter:
    """A SHA-256 fingerprint in a URL: 64 hexadecimal digits, nothing else reaches a view."""

    regex = "[0-9A-Fa-f]{64}"

    def to_python(self, value):
        return value.upper()

    def to_url(self, value):
        return value


register_converter(Sha256Converter, "sha256")

app_name = "certs"

urlpatterns = [
    # Edit SSL Client Certificates, per user (reached from the user's HTTP or FTP policy page).
    path("user/<str:username>/certificates/", views.edit_client_certs, name="edit-client-certs"),
    path("user/<str:username>/certificates/add/", views.add_credential, name="add-credential"),
    path("user/<str:username>/certificates/import/", views.import_certificates, name="import-certificates"),
    path("user/<str:username>/certificates/create/", views.create_certificate, name="create-certificate"),
    path("user/<str:username>/certificates/download/<str:token>/", views.download_issued, name="download-issued"),
    path("user/<str:username>/certificates/<int:pk>/remove/", views.remove_credential, name="remove-credential"),
    path("user/<str:username>/tank/<int:pk>/accept/", views.accept_tank_entry, name="accept-tank-entry"),
    path("user/<str:username>/tank/<int:pk>/remove/", views.remove_tank_entry, name="remove-tank-entry"),
    # The org holding tank: certificates that connected but named no user.
    path("tank/", views.org_tank, name="org-tank"),
    path("tank/<int:pk>/assign/", views.assign_tank_entry, name="assign-tank-entry"),
    path("tank/<int:pk>/remove/", views.remove_org_tank_entry, name="remove-org-tank-entry"),
    # Trusted CAs (the approved list), the match-CN switch and the org CA.
    path("trust/cas/", trust_views.cas, name="cas"),
    path("trust/cas/add/", trust_views.store_add, {"store": "approved"}, name="cas-add"),
    path("trust/cas/add-from-root/", trust_views.approve_from_root, name="cas-add-from-root"),
    path("trust/cas/<sha256:sha256>/approve/", trust_views.approve_known, name="cas-approve"),
    path("trust/cas/<sha256:sha256>/remove/", trust_views.store_remove, {"store": "approved"}, name="cas-remove"),
    path("trust/match-cn/", trust_views.match_cn, name="match-cn"),
    path("trust/org-ca/create/", trust_views.org_ca_create, name="org-ca-create"),
    path("trust/org-ca/import/", trust_views.org_ca_import, name="org-ca-import"),
    path("trust/org-ca/certificate.pem", trust_views.org_ca_download, name="org-ca-download"),
    # The trusted root store and the intermediate pool.
    path("trust/roots/", trust_views.store_page, {"store": "root"}, name="roots"),
    path("trust/roots/add/", trust_views.store_add, {"store": "root"}, name="roots-add"),
    path("trust/roots/<sha256:sha256>/install/", trust_views.install_known, name="roots-install"),
    path("trust/roots/<sha256:sha256>/remove/", trust_views.store_remove, {"store": "root"}, name="roots-remove"),
    path("trust/roots/bundle.pem", trust_views.roots_bundle, name="roots-bundle"),
    path("trust/intermediates/", trust_views.store_page, {"store": "intermediate"}, name="intermediates"),
    path("trust/intermediates/add/", trust_views.store_add, {"store": "intermediate"}, name="intermediates-add"),
    path(
        "trust/intermediates/<sha256:sha256>/remove/",
        trust_views.store_remove,
        {"store": "intermediate"},
        name="intermediates-remove",
    ),
    # The doctor: why a certificate can or cannot sign on; the sign-on overview.
    path("doctor/", doctor_views.doctor, name="doctor"),
    path("doctor/overview/", doctor_views.overview, name="overview"),
    # Any certificate the app knows.
    path("certificate/<sha256:sha256>/", trust_views.certificate_detail, name="certificate"),
    path("certificate/<sha256:sha256>/certificate.pem", trust_views.certificate_download, name="certificate-download"),
]
