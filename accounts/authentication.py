"""How callers prove who they are (SPEC §2).

- `Authorization: Bearer <access>`: JWT, no CSRF (a header cannot be forged cross-site).
- The HttpOnly `access_token` cookie set at login: JWT too, but unsafe methods need the CSRF
  header, since a browser sends cookies on cross-site requests.
- `Authorization: Api-Key <key>`: a hashed, scoped service key for machine callers.
"""

from django.contrib.auth.models import AnonymousUser
from django.middleware.csrf import CsrfViewMiddleware
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework_simplejwt.authentication import JWTAuthentication

from accounts.models import ServiceApiKey

ACCESS_COOKIE = "access_token"
REFRESH_COOKIE = "refresh_token"


class _CSRFCheck(CsrfViewMiddleware):
    def _reject(self, request, reason):
        return reason


class JWTCookieOrHeaderAuthentication(JWTAuthentication):
    def get_user(self, validated_token):
        user = super().get_user(validated_token)
        if getattr(user, "deleted_at", None) is not None:
            raise exceptions.AuthenticationFailed("User is inactive", code="user_inactive")
        return user

    def authenticate(self, request):
        header = self.get_header(request)
        if header is not None:
            return super().authenticate(request)
        raw_token = request.COOKIES.get(ACCESS_COOKIE)
        if not raw_token:
            return None
        validated = self.get_validated_token(raw_token.encode())
        user = self.get_user(validated)
        self.enforce_csrf(request)
        return user, validated

    def enforce_csrf(self, request):
        enforce_csrf(request)


def enforce_csrf(request) -> None:
    """Django's CSRF check for a request whose credentials came from a cookie (403 if it fails)."""
    check = _CSRFCheck(lambda req: None)
    check.process_request(request)
    reason = check.process_view(request, None, (), {})
    if reason:
        raise exceptions.PermissionDenied(f"CSRF failed: {reason}")


class ServiceClient(AnonymousUser):
    """The principal behind a service API key: authenticated, but not a user account."""

    def __init__(self, api_key: ServiceApiKey):
        super().__init__()
        self.api_key = api_key
        # UserRateThrottle keys on `pk`; AnonymousUser's None would put every key in one bucket.
        self.id = self.pk = f"api-key:{api_key.prefix}"

    @property
    def is_authenticated(self):
        return True

    def __str__(self):
        return f"service:{self.api_key.name}"


class ApiKeyAuthentication(BaseAuthentication):
    keyword = b"api-key"

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Malformed Api-Key header.")
        try:
            key = parts[1].decode("ascii")
            api_key = ServiceApiKey.objects.get_from_key(key)
        except (UnicodeDecodeError, ServiceApiKey.DoesNotExist):
            raise exceptions.AuthenticationFailed("Invalid API key.") from None
        if api_key.has_expired:
            raise exceptions.AuthenticationFailed("Invalid API key.")
        ServiceApiKey.objects.filter(pk=api_key.pk).update(last_used_at=timezone.now())
        return ServiceClient(api_key), api_key

    def authenticate_header(self, request):
        return "Api-Key"
