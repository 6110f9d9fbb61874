from django.contrib.auth.backends import ModelBackend
from rest_framework.throttling import BaseThrottle


class EmailBackend(ModelBackend):
    """Email login, case-insensitive; inactive (soft-deleted) users never authenticate.

    ModelBackend already runs the password hasher for unknown emails too, so a wrong password
    and an unknown email take the same time and give the same answer.
    """

    def authenticate(self, request, username=None, password=None, email=None, **kwargs):
        return super().authenticate(request, username=email or username, password=password, **kwargs)

    def user_can_authenticate(self, user):
        # A closed account stays closed even if staff tick is_active again by mistake.
        return super().user_can_authenticate(user) and getattr(user, "deleted_at", None) is None


def axes_username(request, credentials) -> str | None:
    """The login name django-axes counts failures under: the admin form's `username`, or the
    API's `email` (LoginApi calls authenticate(email=...)), case-folded like the login itself."""
    credentials = credentials or {}
    name = credentials.get("username") or credentials.get("email")
    if name is None and request is not None and hasattr(request, "POST"):
        name = request.POST.get("username")
    return name.strip().lower() if isinstance(name, str) else None


def axes_client_ip(request) -> str | None:
    """The same client address DRF's throttles use (X-Forwarded-For only behind NUM_PROXIES)."""
    return BaseThrottle().get_ident(request)
