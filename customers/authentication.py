from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from customers.services.api_keys import api_key_authenticate


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer <key>``. The request's ``auth`` is the ApiKey row."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode(errors="replace")
        scheme, _, raw_key = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        raw_key = raw_key.strip()
        if not raw_key:
            raise exceptions.AuthenticationFailed("the Authorization header has no key")
        api_key = api_key_authenticate(raw_key)
        if api_key is None:
            raise exceptions.AuthenticationFailed("unknown or revoked API key")
        return (None, api_key)

    def authenticate_header(self, request):
        return self.keyword


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "customers.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer"}
