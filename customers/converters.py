"""The URL converter for a customer's external id in the REST API's paths.

A userId is whatever the customer's own systems use: it may hold "/", "?", "#", "%",
spaces, newlines. Clients percent-encode it as one path segment (``a%2Fb``); the server
decodes the path before Django routes it, so ``%2F`` arrives as "/" and Django's ``str``
converter (no "/") could never match it, nor its ``path`` one a newline. Routes that
take an id followed by a fixed part (``events/``, ``consent/``) must therefore be tried
before the profile's own route, which takes anything ending in "/".
"""

from django.urls import register_converter


class ExternalIdConverter:
    regex = r"[\s\S]+"  # any character at all, at least one

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        # reverse() percent-encodes the result ("%" as %25, " " as %20); "/" stays as it
        # is, which routes to the same place.
        return value


register_converter(ExternalIdConverter, "external_id")
