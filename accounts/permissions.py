from rest_framework.permissions import BasePermission

from accounts.models import ServiceApiKey


def insufficient_scope(scope: str | None) -> Exception:
    # Imported here: config.exceptions imports rest_framework.views, which loads this module
    # through DEFAULT_PERMISSION_CLASSES.
    from config.exceptions import Forbidden

    needed = f" (needs {scope})" if scope else " (this endpoint is for user accounts)"
    return Forbidden(f"This API key lacks the required scope{needed}.", code="insufficient_scope")


class IsServiceKeyWithScope(BasePermission):
    """Allows a request authenticated by a service API key carrying `view.required_scope`.

    A key without that scope is refused with 403 `insufficient_scope` (a key is never also a
    user account, so no other permission could let it in).
    """

    message = "This endpoint needs a service API key."

    def has_permission(self, request, view):
        api_key = request.auth
        if not isinstance(api_key, ServiceApiKey):
            return False
        scope = getattr(view, "required_scope", None)
        if scope is None or not api_key.has_scope(scope):
            raise insufficient_scope(scope)
        return True


class IsUserAccount(BasePermission):
    """An authenticated person (JWT or cookie), not a service key.

    A service key is answered 403 `insufficient_scope`, unless it holds the view's
    `required_scope` (then `IsServiceKeyWithScope`, OR-ed with this one, lets it in).
    """

    def has_permission(self, request, view):
        if isinstance(request.auth, ServiceApiKey):
            scope = getattr(view, "required_scope", None)
            if scope is None or not request.auth.has_scope(scope):
                raise insufficient_scope(scope)
            return False
        return bool(request.user and request.user.is_authenticated)
