from django.conf import settings
from django.contrib.auth import authenticate
from django.middleware.csrf import get_token
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import selectors, services
from accounts.authentication import ACCESS_COOKIE, REFRESH_COOKIE, enforce_csrf
from accounts.permissions import IsUserAccount
from accounts.serializers import (
    DetailSerializer,
    EmailVerifyInputSerializer,
    LoginInputSerializer,
    PasswordResetConfirmInputSerializer,
    PasswordResetInputSerializer,
    PreferencesSerializer,
    ProgressInputSerializer,
    RefreshInputSerializer,
    RegisterInputSerializer,
    TokenPairSerializer,
    UserSerializer,
    UserUpdateSerializer,
)
from config.exceptions import ApplicationError
from config.parsers import LimitedJSONParser
from config.throttling import ScopedRateThrottle


def _issue_tokens(user) -> dict:
    refresh = RefreshToken.for_user(user)
    return {"access": str(refresh.access_token), "refresh": str(refresh)}


def _set_auth_cookies(request, response, tokens: dict) -> None:
    """HttpOnly cookies for browser clients; the CSRF cookie guards their unsafe requests."""
    jwt = settings.SIMPLE_JWT
    common = {
        "httponly": True,
        "secure": settings.JWT_COOKIE_SECURE,
        "samesite": settings.JWT_COOKIE_SAMESITE,
    }
    response.set_cookie(
        ACCESS_COOKIE, tokens["access"], max_age=int(jwt["ACCESS_TOKEN_LIFETIME"].total_seconds()), **common
    )
    if "refresh" in tokens:
        response.set_cookie(
            REFRESH_COOKIE,
            tokens["refresh"],
            path="/api/auth/",
            max_age=int(jwt["REFRESH_TOKEN_LIFETIME"].total_seconds()),
            **common,
        )
    get_token(request)  # makes CsrfViewMiddleware set the csrftoken cookie on this response


def _clear_auth_cookies(response) -> None:
    response.delete_cookie(ACCESS_COOKIE, samesite=settings.JWT_COOKIE_SAMESITE)
    response.delete_cookie(REFRESH_COOKIE, path="/api/auth/", samesite=settings.JWT_COOKIE_SAMESITE)


def _refresh_from(request, serializer) -> str:
    """The refresh token from the body, else from the HttpOnly cookie. A cookie is sent by the
    browser on cross-site requests too, so cookie mode needs the CSRF header (403 without it)."""
    raw = serializer.validated_data.get("refresh")
    if raw:
        return raw
    raw = request.COOKIES.get(REFRESH_COOKIE)
    if not raw:
        raise ApplicationError(
            "Invalid input.", code="validation_error", fields={"refresh": ["This field is required."]}
        )
    enforce_csrf(request)
    return raw


class JsonApi(APIView):
    """Accounts endpoints speak JSON only: form or multipart bodies get a 415 rather
    than a lenient parse of whatever half of them survives."""

    parser_classes = [LimitedJSONParser]


class RegisterApi(JsonApi):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "register"

    @extend_schema(
        request=RegisterInputSerializer,
        responses={
            201: inline_serializer(
                "RegisterOutput", {"user": UserSerializer(), "tokens": TokenPairSerializer()}
            )
        },
    )
    def post(self, request):
        serializer = RegisterInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        data.pop("password_confirm")
        user = services.user_register(**data)
        tokens = _issue_tokens(user)
        user = selectors.user_get_profile(user_id=user.pk)
        response = Response(
            {"user": UserSerializer(user).data, "tokens": tokens}, status=status.HTTP_201_CREATED
        )
        _set_auth_cookies(request, response, tokens)
        return response


class LoginApi(JsonApi):
    """Email and password → access and refresh tokens (also as HttpOnly cookies).

    A wrong password, an unknown email and a closed account give the same 401.
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "login"

    @extend_schema(request=LoginInputSerializer, responses={200: TokenPairSerializer})
    def post(self, request):
        serializer = LoginInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = authenticate(
            request, email=serializer.validated_data["email"], password=serializer.validated_data["password"]
        )
        if user is None and getattr(request, "axes_locked_out", False):
            raise ApplicationError(
                "Too many failed logins; try again later.",
                code="locked_out",
                status_code=status.HTTP_429_TOO_MANY_REQUESTS,
            )
        if user is None:
            raise ApplicationError(
                "No active account found with the given credentials.",
                code="invalid_credentials",
                status_code=status.HTTP_401_UNAUTHORIZED,
            )
        services.user_record_login(user=user)
        tokens = _issue_tokens(user)
        response = Response(tokens)
        _set_auth_cookies(request, response, tokens)
        return response


class RefreshApi(JsonApi):
    """Rotate a refresh token: the old one is blacklisted, reusing it answers 401."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(request=RefreshInputSerializer, responses={200: TokenPairSerializer})
    def post(self, request):
        serializer = RefreshInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        tokens = services.token_refresh_rotate(raw=_refresh_from(request, serializer))
        response = Response(tokens)
        _set_auth_cookies(request, response, tokens)
        return response


class LogoutApi(JsonApi):
    """Blacklist the refresh token and clear the auth cookies.

    The cookies are cleared whatever the outcome: a browser holding an already blacklisted or
    expired refresh token cannot delete its HttpOnly cookies itself, so a 401 here must still
    log it out.
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(request=RefreshInputSerializer, responses={204: None})
    def post(self, request):
        serializer = RefreshInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            raw = _refresh_from(request, serializer)
        except exceptions.PermissionDenied:
            self.csrf_refused = True  # a forged cross-site logout must not clear the cookies
            raise
        services.token_blacklist(raw=raw)
        return Response(status=status.HTTP_204_NO_CONTENT)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if not getattr(self, "csrf_refused", False):
            _clear_auth_cookies(response)
        return response


class MeApi(JsonApi):
    permission_classes = [IsUserAccount]

    @extend_schema(responses=UserSerializer)
    def get(self, request):
        return Response(UserSerializer(selectors.user_get_profile(user_id=request.user.pk)).data)

    @extend_schema(request=UserUpdateSerializer, responses=UserSerializer)
    def patch(self, request):
        serializer = UserUpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        services.user_update(user=request.user, **serializer.validated_data)
        return Response(UserSerializer(selectors.user_get_profile(user_id=request.user.pk)).data)

    @extend_schema(responses={204: None})
    def delete(self, request):
        services.user_soft_delete(user=request.user)
        response = Response(status=status.HTTP_204_NO_CONTENT)
        _clear_auth_cookies(response)
        return response


class PreferencesApi(JsonApi):
    permission_classes = [IsUserAccount]

    @extend_schema(responses=PreferencesSerializer)
    def get(self, request):
        prefs = selectors.preferences_get(user=request.user)
        return Response(PreferencesSerializer(prefs).data)

    @extend_schema(request=PreferencesSerializer, responses=PreferencesSerializer)
    def patch(self, request):
        serializer = PreferencesSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        prefs = services.preferences_update(user=request.user, **serializer.validated_data)
        return Response(PreferencesSerializer(prefs).data)


class ProgressApi(JsonApi):
    permission_classes = [IsUserAccount]

    @extend_schema(request=ProgressInputSerializer, responses=UserSerializer)
    def post(self, request):
        serializer = ProgressInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.user_record_progress(user=request.user, **serializer.validated_data)
        return Response(UserSerializer(selectors.user_get_profile(user_id=request.user.pk)).data)


class PasswordResetApi(JsonApi):
    """Ask for a password-reset email. Always 202, whether or not the address has an account."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "password_reset"

    @extend_schema(request=PasswordResetInputSerializer, responses={202: DetailSerializer})
    def post(self, request):
        serializer = PasswordResetInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.password_reset_request(email=serializer.validated_data["email"])
        return Response(
            {"detail": "If an account uses this address, a reset link is on its way."},
            status=status.HTTP_202_ACCEPTED,
        )


class PasswordResetConfirmApi(JsonApi):
    """Set a new password with the uid and token of a reset link; every session is ended."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "password_reset"

    @extend_schema(request=PasswordResetConfirmInputSerializer, responses={200: DetailSerializer})
    def post(self, request):
        serializer = PasswordResetConfirmInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.password_reset_confirm(**serializer.validated_data)
        return Response({"detail": "Your password has been changed; please log in again."})


class EmailVerifyApi(JsonApi):
    """Confirm an email address with the uid and token of a verification link."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "email_verify"

    @extend_schema(request=EmailVerifyInputSerializer, responses={200: DetailSerializer})
    def post(self, request):
        serializer = EmailVerifyInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.email_verify(**serializer.validated_data)
        return Response({"detail": "Your email address is verified."})


class EmailVerifyResendApi(JsonApi):
    """Send the signed-in user a new verification link (202; nothing is sent once verified)."""

    permission_classes = [IsUserAccount]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "email_verify"

    @extend_schema(request=None, responses={202: DetailSerializer})
    def post(self, request):
        sent = services.email_verification_send(user=request.user)
        detail = "A verification link is on its way." if sent else "Your email address is already verified."
        return Response({"detail": detail}, status=status.HTTP_202_ACCEPTED)
