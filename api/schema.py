"""How the OpenAPI description names the ways of signing on (drf-spectacular extensions)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension

SCHEMES = {
    "api.auth.TokenAuthentication": (
        "token",
        {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal API token (mft_...), made in the browser or with manage.py users token create.",
        },
    ),
    "api.auth.CertificateAuthentication": (
        "clientCertificate",
        {
            "type": "mutualTLS",
            "description": "The client certificate, by the same sign-on rules and HTTPS sign-on mode as the pages.",
        },
    ),
    "api.auth.SessionAuthentication": (
        "session",
        {
            "type": "apiKey",
            "in": "cookie",
            "name": "sessionid",
            "description": "A browser signed in to the pages (this docs page); writes need the CSRF token.",
        },
    ),
}


def _scheme(target: str, name: str, definition: dict) -> type:
    def get_security_definition(self, auto_schema):
        return definition

    attributes = {"target_class": target, "name": name, "get_security_definition": get_security_definition}
    return type(f"{name[0].upper()}{name[1:]}Scheme", (OpenApiAuthenticationExtension,), attributes)


# Defining a subclass registers it with drf-spectacular.
EXTENSIONS = [_scheme(target, name, definition) for target, (name, definition) in SCHEMES.items()]
