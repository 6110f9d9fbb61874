"""OpenAPI descriptions of our authentication classes (loaded by AccountsConfig.ready)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object


class JWTCookieOrHeaderScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.JWTCookieOrHeaderAuthentication"
    name = ["jwtAuth", "jwtCookieAuth"]

    def get_security_definition(self, auto_schema):
        return [
            build_bearer_security_scheme_object(
                header_name="Authorization", token_prefix="Bearer", bearer_format="JWT"
            ),
            {"type": "apiKey", "in": "cookie", "name": "access_token"},
        ]


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ApiKeyAuthentication"
    name = "serviceApiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization", "description": "`Api-Key <key>`"}
