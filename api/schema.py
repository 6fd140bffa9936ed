"""How the OpenAPI description names the ways of signing on (drf-spectacular extensions)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class TokenScheme(OpenApiAuthenticationExtension):
    target_class = "api.auth.TokenAuthentication"
    name = "token"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal API token (mft_...), made in the browser or with manage.py users token create.",
        }


class CertificateScheme(OpenApiAuthenticationExtension):
    target_class = "api.auth.CertificateAuthentication"
    name = "clientCertificate"

    def get_security_definition(self, auto_schema):
        return {
            "type": "mutualTLS",
            "description": "The client certificate, by the same sign-on rules and HTTPS sign-on mode as the pages.",
        }


class SessionScheme(OpenApiAuthenticationExtension):
    target_class = "api.auth.SessionAuthentication"
    name = "session"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "cookie",
            "name": "sessionid",
            "description": "A browser signed in to the pages (this docs page); writes need the CSRF token.",
        }
