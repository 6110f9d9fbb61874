from rest_framework.permissions import BasePermission

from accounts.models import ServiceApiKey


class IsServiceKeyWithScope(BasePermission):
    """Allows a request authenticated by a service API key carrying `view.required_scope`."""

    message = "This API key lacks the required scope."

    def has_permission(self, request, view):
        api_key = request.auth
        return isinstance(api_key, ServiceApiKey) and api_key.has_scope(view.required_scope)


class IsUserAccount(BasePermission):
    """An authenticated person (JWT or cookie), not a service key."""

    def has_permission(self, request, view):
        return bool(request.user and request.user.is_authenticated
                    and not isinstance(request.auth, ServiceApiKey))
