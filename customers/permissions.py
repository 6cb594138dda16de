from rest_framework import permissions

from customers.models import ApiKey


class HasScope(permissions.BasePermission):
    """Reads need the ``read`` scope, writes ``write``; a view may ask for another with
    ``required_scope`` (API keys themselves need ``admin``)."""

    message = "this API key lacks the scope this request needs"

    def has_permission(self, request, view) -> bool:
        api_key = request.auth
        if not isinstance(api_key, ApiKey):
            return False
        scope = getattr(view, "required_scope", None)
        if scope is None:
            safe = request.method in permissions.SAFE_METHODS
            scope = ApiKey.Scope.READ if safe else ApiKey.Scope.WRITE
        return api_key.has_scope(scope)
