"""How callers prove who they are.

- `Authorization: Bearer <access>`: JWT, no CSRF (a header cannot be forged cross-site).
- The HttpOnly `access_token` cookie set at login: JWT too, but unsafe methods need the CSRF
  header, since a browser sends cookies on cross-site requests.
- `Authorization: Api-Key <key>`: a hashed, scoped service key for machine callers.
"""

import threading
import time

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db import DEFAULT_DB_ALIAS, transaction
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, SessionAuthentication, get_authorization_header
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.settings import api_settings as jwt_settings

from accounts.models import ServiceApiKey, User

ACCESS_COOKIE = "access_token"
REFRESH_COOKIE = "refresh_token"


class _UserRowCache:
    """The user rows JWT requests authenticated with, per process, for AUTH_USER_CACHE_SECONDS.

    Without it every JWT request reads its user row (a query, a round trip and the ORM's work)
    only to learn it is still active. Only active, not deleted users are kept, as their field
    values (each request gets a fresh instance, so nothing a view does to request.user leaks
    into another request). Staleness is bounded twice: a saved or deleted user is forgotten at
    once by the signal in accounts/signals.py (services that change users with a queryset
    UPDATE call `forget` themselves), and every entry expires after the TTL, which bounds how
    long another process's change (another gunicorn worker, a Celery worker) can go unseen.
    0 disables it.
    """

    MAX_ENTRIES = 10_000

    def __init__(self):
        self._rows: dict[str, tuple[float, tuple]] = {}
        self._lock = threading.Lock()
        self._fields = [f.attname for f in User._meta.concrete_fields]

    def get(self, user_id) -> User | None:
        entry = self._rows.get(str(user_id))
        if entry is None or entry[0] <= time.time():
            return None
        return User.from_db(DEFAULT_DB_ALIAS, self._fields, entry[1])

    def put(self, user: User) -> None:
        ttl = settings.AUTH_USER_CACHE_SECONDS
        if ttl <= 0:
            return
        values = tuple(getattr(user, name) for name in self._fields)
        with self._lock:
            if len(self._rows) >= self.MAX_ENTRIES:
                self._rows.clear()
            self._rows[str(user.pk)] = (time.time() + ttl, values)

    def forget(self, *user_ids) -> None:
        """Drop these users now, and again when the current transaction commits (a request
        served in between, by another thread, may have cached the row as it was before)."""
        self._drop(user_ids)
        transaction.on_commit(lambda: self._drop(user_ids))

    def _drop(self, user_ids) -> None:
        with self._lock:
            for user_id in user_ids:
                self._rows.pop(str(user_id), None)

    def clear(self) -> None:
        with self._lock:
            self._rows.clear()


user_row_cache = _UserRowCache()


def token_predates_password(user: User, payload) -> bool:
    """True when the JWT with this payload was issued before the user's password last changed.

    `iat` has whole seconds, so a token issued in the second of the change (the login right
    after a reset, registration's own tokens) still counts as after it. A process sees a change
    made elsewhere once its cached user row expires (AUTH_USER_CACHE_SECONDS).
    """
    changed = user.password_changed_at
    if changed is None:
        return False
    issued = payload.get("iat")
    return not isinstance(issued, int) or issued < int(changed.timestamp())


class JWTCookieOrHeaderAuthentication(JWTAuthentication):
    def get_user(self, validated_token):
        try:
            user_id = validated_token[jwt_settings.USER_ID_CLAIM]
        except KeyError as exc:
            raise InvalidToken("Token contained no recognizable user identification") from exc
        user = user_row_cache.get(user_id)
        if user is None:
            user = super().get_user(validated_token)  # the row; refuses a missing or inactive user
            if getattr(user, "deleted_at", None) is not None:
                raise exceptions.AuthenticationFailed("User is inactive", code="user_inactive")
            user_row_cache.put(user)
        if token_predates_password(user, validated_token.payload):
            raise exceptions.AuthenticationFailed(
                "The password changed after this token was issued.", code="token_not_valid"
            )
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
    """Django's CSRF check for a request whose credentials came from a cookie: DRF's, as its
    session authentication runs it (PermissionDenied, a 403, if it fails)."""
    SessionAuthentication().enforce_csrf(request)


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
