from django.urls import path

from accounts import apis

urlpatterns = [
    path("auth/register", apis.RegisterApi.as_view(), name="auth-register"),
    path("auth/token", apis.LoginApi.as_view(), name="auth-token"),
    path("auth/token/refresh", apis.RefreshApi.as_view(), name="auth-token-refresh"),
    path("auth/logout", apis.LogoutApi.as_view(), name="auth-logout"),
    path("auth/password/reset", apis.PasswordResetApi.as_view(), name="auth-password-reset"),
    path(
        "auth/password/reset/confirm",
        apis.PasswordResetConfirmApi.as_view(),
        name="auth-password-reset-confirm",
    ),
    path("auth/email/verify", apis.EmailVerifyApi.as_view(), name="auth-email-verify"),
    path("auth/email/verify/resend", apis.EmailVerifyResendApi.as_view(), name="auth-email-verify-resend"),
    path("users/me", apis.MeApi.as_view(), name="users-me"),
    path("users/me/preferences", apis.PreferencesApi.as_view(), name="users-me-preferences"),
    path("users/me/progress", apis.ProgressApi.as_view(), name="users-me-progress"),
]
