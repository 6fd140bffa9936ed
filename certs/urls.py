from django.urls import path, register_converter

from .views import crl, doctor, profiles, revocation, tank, trust


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
    path("user/<str:username>/certificates/", profiles.edit_client_certs, name="edit-client-certs"),
    path("user/<str:username>/certificates/add/", profiles.add_credential, name="add-credential"),
    path("user/<str:username>/certificates/import/", profiles.import_certificates, name="import-certificates"),
    path("user/<str:username>/certificates/create/", profiles.create_certificate, name="create-certificate"),
    path("user/<str:username>/certificates/issued/<str:token>/", profiles.issued_certificate, name="issued"),
    path("user/<str:username>/certificates/download/<str:token>/", profiles.download_issued, name="download-issued"),
    path("user/<str:username>/certificates/<int:pk>/remove/", profiles.remove_credential, name="remove-credential"),
    path("user/<str:username>/certificates/<int:pk>/revoke/", profiles.revoke_certificate, name="revoke-certificate"),
    path("user/<str:username>/tank/<int:pk>/accept/", profiles.accept_tank_entry, name="accept-tank-entry"),
    path("user/<str:username>/tank/<int:pk>/remove/", profiles.remove_tank_entry, name="remove-tank-entry"),
    path(
        "user/<str:username>/tank/certificate/<sha256:sha256>/remove/",
        profiles.remove_presented,
        name="remove-presented",
    ),
    # The org holding tank: certificates that connected but named no user.
    path("tank/", tank.org_tank, name="org-tank"),
    path("tank/all/", tank.pending, name="pending"),
    path("tank/<int:pk>/assign/", tank.assign_tank_entry, name="assign-tank-entry"),
    path("tank/<int:pk>/remove/", tank.remove_org_tank_entry, name="remove-org-tank-entry"),
    # Trusted CAs (the approved list), the match-CN switch and the org CA.
    path("trust/cas/", trust.cas, name="cas"),
    path("trust/cas/add/", trust.store_add, {"store": "approved"}, name="cas-add"),
    path("trust/cas/add-from-root/", trust.approve_from_root, name="cas-add-from-root"),
    path("trust/cas/<sha256:sha256>/approve/", trust.approve_known, name="cas-approve"),
    path("trust/cas/<sha256:sha256>/remove/", trust.store_remove, {"store": "approved"}, name="cas-remove"),
    path("trust/match-cn/", trust.match_cn, name="match-cn"),
    path("trust/auto-renew/", trust.auto_renew, name="auto-renew"),
    path("trust/self-renewal/", trust.self_renewal, name="self-renewal"),
    path("trust/org-ca/create/", trust.org_ca_create, name="org-ca-create"),
    path("trust/org-ca/import/", trust.org_ca_import, name="org-ca-import"),
    path("trust/org-ca/certificate.pem", trust.org_ca_download, name="org-ca-download"),
    # The trusted root store and the intermediate pool.
    path("trust/roots/", trust.store_page, {"store": "root"}, name="roots"),
    path("trust/roots/add/", trust.store_add, {"store": "root"}, name="roots-add"),
    path("trust/roots/<sha256:sha256>/install/", trust.install_known, name="roots-install"),
    path("trust/roots/<sha256:sha256>/remove/", trust.store_remove, {"store": "root"}, name="roots-remove"),
    path("trust/roots/bundle.pem", trust.roots_bundle, name="roots-bundle"),
    path("trust/intermediates/", trust.store_page, {"store": "intermediate"}, name="intermediates"),
    path("trust/intermediates/add/", trust.store_add, {"store": "intermediate"}, name="intermediates-add"),
    path(
        "trust/intermediates/<sha256:sha256>/remove/",
        trust.store_remove,
        {"store": "intermediate"},
        name="intermediates-remove",
    ),
    # Revocation: the policies and the stored CRLs.
    path("trust/revocation/", revocation.revocation, name="revocation"),
    path("trust/revocation/policy/", revocation.set_default, name="revocation-default"),
    path("trust/revocation/ca/", revocation.set_ca_policy, name="revocation-ca"),
    path("trust/revocation/ca/<str:thumbprint>/remove/", revocation.remove_ca_policy, name="revocation-ca-remove"),
    path("trust/revocation/crls/add/", revocation.upload_crl, name="crls-add"),
    path("trust/revocation/crls/fetch/", revocation.fetch, name="crls-fetch"),
    path("trust/revocation/crls/<int:pk>/remove/", revocation.remove_crl, name="crls-remove"),
    # The org CA's CRL (DER), for anyone: the distribution point its certificates name.
    path("crl/org-ca.crl", crl.org_ca_crl, name="org-ca-crl"),
    # The doctor: why a certificate can or cannot sign on; the sign-on overview.
    path("doctor/", doctor.doctor, name="doctor"),
    path("doctor/overview/", doctor.overview, name="overview"),
    # Any certificate the app knows.
    path("certificate/<sha256:sha256>/", trust.certificate_detail, name="certificate"),
    path("certificate/<sha256:sha256>/certificate.pem", trust.certificate_download, name="certificate-download"),
]
