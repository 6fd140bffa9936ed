"""The API's addresses, under /api/v1/. Anything else under /api/v1/ answers a 404 problem."""

from django.urls import include, path, re_path

from . import problems
from .views import audit, certs, docs, revocation, transfers, trust, users

app_name = "api"

ROOTS, ROOT = trust.store_views("roots")
INTERMEDIATES, INTERMEDIATE = trust.store_views("intermediates")
CAS, CA = trust.store_views("cas")

operations = [
    path("whoami/", users.WhoAmI.as_view(), name="whoami"),
    path("users/", users.Users.as_view(), name="users"),
    path("users/<str:username>/", users.UserDetail.as_view(), name="user"),
    path("users/<str:username>/deletion/", users.DeletionPreview.as_view(), name="deletion"),
    path("users/<str:username>/deactivate/", users.Deactivate.as_view(), name="deactivate"),
    path("users/<str:username>/password/", users.SetPassword.as_view(), name="password"),
    path("users/<str:username>/policies/", users.Policies.as_view(), name="policies"),
    path("users/<str:username>/policies/<str:interface>/", users.PolicyDetail.as_view(), name="policy"),
    path("users/<str:username>/transfers/", transfers.UserTransfers.as_view(), name="user-transfers"),
    path("users/<str:username>/certificates/", certs.ProfileCertificates.as_view(), name="certificates"),
    path("users/<str:username>/certificates/import/", certs.ImportCertificates.as_view(), name="import"),
    path("users/<str:username>/certificates/issue/", certs.IssueCertificate.as_view(), name="issue"),
    path("users/<str:username>/certificates/<int:pk>/", certs.ProfileCertificate.as_view(), name="certificate"),
    path("users/<str:username>/certificates/<int:pk>/revoke/", revocation.RevokeCertificate.as_view(), name="revoke"),
    path("roots/", ROOTS.as_view(), name="roots"),
    path("roots/bundle.pem", trust.RootsBundle.as_view(), name="roots-bundle"),
    path("roots/<str:thumbprint>/", ROOT.as_view(), name="root"),
    path("intermediates/", INTERMEDIATES.as_view(), name="intermediates"),
    path("intermediates/<str:thumbprint>/", INTERMEDIATE.as_view(), name="intermediate"),
    path("cas/", CAS.as_view(), name="cas"),
    path("cas/<str:thumbprint>/", CA.as_view(), name="ca"),
    path("match-cn/", trust.MatchCN.as_view(), name="match-cn"),
    path("org-ca/", trust.OrgCAView.as_view(), name="org-ca"),
    path("tank/", trust.Tank.as_view(), name="tank"),
    path("tank/<int:pk>/", trust.TankEntryDetail.as_view(), name="tank-entry"),
    path("tank/<int:pk>/accept/", trust.TankAcceptView.as_view(), name="tank-accept"),
    path("tank/<int:pk>/assign/", trust.TankAssignView.as_view(), name="tank-assign"),
    path("crls/", revocation.Crls.as_view(), name="crls"),
    path("crls/<int:pk>/", revocation.CrlDetail.as_view(), name="crl"),
    path("revocation/", revocation.Revocation.as_view(), name="revocation"),
    path("revocation/<str:thumbprint>/", revocation.RevocationOverride.as_view(), name="revocation-ca"),
    path("check/", certs.Check.as_view(), name="check"),
    path("audit/", audit.AuditLog.as_view(), name="audit"),
    path("transfers/", transfers.Transfers.as_view(), name="transfers"),
    path("schema/", docs.Schema.as_view(), name="schema"),
    path("docs/", docs.docs, name="docs"),
]

urlpatterns = [
    path("api/v1/", include(operations)),
    re_path(r"^api/v1(/.*)?$", problems.not_found, name="not-found"),
]
