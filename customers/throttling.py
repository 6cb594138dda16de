from rest_framework.throttling import SimpleRateThrottle

from customers.models import ApiKey


class ApiKeyRateThrottle(SimpleRateThrottle):
    """Requests per key, counted in the shared cache (Redis) across all web processes."""

    scope = "api_key"

    def get_cache_key(self, request, view):
        if isinstance(request.auth, ApiKey):
            return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
