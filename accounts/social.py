"""Social login (Google, Facebook, LINE Login) through django-allauth's headless API.

allauth verifies the provider's token, finds or creates the user and links the social account;
what is ours is said here:

- `SimpleJWTTokenStrategy`: a successful login through the app client answers with the same
  simplejwt pair as `POST /api/auth/token` (`meta.access_token`, `meta.refresh_token`), so the
  rest of the API cannot tell how the user signed in.
- `SocialAccountAdapter`: a new social user gets a name from the provider's profile, the rows
  every account has (the post_save signal in accounts/signals.py: preferences, a 30-day trial
  license), and its email marked verified when the provider vouches for it (else our own
  verification email). An existing account is entered by email only when the provider says
  the email is verified (SOCIALACCOUNT_EMAIL_AUTHENTICATION). An account whose address nobody
  had verified is claimed (`services.user_claim_by_verified_email`: its password and tokens
  die), so whoever registered it with someone else's address loses it; our verified accounts
  are shown to allauth as verified (an EmailAddress row) so their password stays.

Staff: a social login ends in a JWT pair and an allauth session reached only by its token; the
admin still asks every staff session for its TOTP code (console/admin_site.py).
"""

import json
import logging
import math
from typing import Any

from allauth.account.models import EmailAddress
from allauth.headless.adapter import get_adapter as get_headless_adapter
from allauth.headless.constants import Client
from allauth.headless.internal.restkit.response import ErrorResponse
from allauth.headless.socialaccount import inputs as headless_inputs
from allauth.headless.socialaccount import views as headless_views
from allauth.headless.tokens.strategies.sessions import SessionTokenStrategy
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from accounts import services
from accounts.apis import _set_auth_cookies as set_auth_cookies
from accounts.models import User
from config.throttling import ScopedRateThrottle

logger = logging.getLogger(__name__)


class SimpleJWTTokenStrategy(SessionTokenStrategy):
    """allauth's session tokens for its own flows, plus our simplejwt pair once logged in."""

    def create_access_token_payload(self, request: HttpRequest) -> dict[str, Any] | None:
        user = request.user
        if not user.is_authenticated:
            return None
        services.user_record_login(user=user)
        tokens = services.token_pair_issue(user=user)
        return {
            "access_token": tokens["access"],
            "refresh_token": tokens["refresh"],
            "expires_in": int(settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds()),
        }


def _verified_emails(sociallogin) -> set[str]:
    return {
        User.objects.normalize_email(address.email)
        for address in sociallogin.email_addresses
        if address.verified
    }


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def populate_user(self, request, sociallogin, data):
        user = super().populate_user(request, sociallogin, data)
        user.email = User.objects.normalize_email(user.email)
        name = data.get("name") or " ".join(p for p in (data.get("first_name"), data.get("last_name")) if p)
        user.name = (name or "")[: User._meta.get_field("name").max_length]
        return user

    def save_user(self, request, sociallogin, form=None):
        user = super().save_user(request, sociallogin, form)
        if user.email in _verified_emails(sociallogin):
            services.user_mark_email_verified(user=user)
        else:
            services.email_verification_send(user=user)
        return user

    def authenticate_by_email(self, sociallogin):
        found = super().authenticate_by_email(sociallogin)
        if found is not None and (not found[0].is_active or found[0].is_deleted):
            return None  # a closed account stays closed, and gets no social account linked
        if found is not None:
            user, email = found
            if user.email_verified_at is not None and user.email.lower() == email.lower():
                # allauth reads "verified" from its EmailAddress table; ours is on the user row.
                EmailAddress.objects.update_or_create(
                    user=user,
                    email__iexact=email,
                    defaults={"email": user.email, "verified": True, "primary": True},
                )
            else:
                services.user_claim_by_verified_email(user=user)
        return found


class ProviderTokenInput(headless_inputs.ProviderTokenInput):
    """allauth's input, except that a token or a provider answer of a shape allauth does not
    expect (an ID token without `kid`, a key set that is not one, a discovery document without
    `jwks_uri`) is an invalid token (400), not an uncaught exception (500)."""

    def clean(self):
        try:
            return super().clean()
        except (LookupError, TypeError, ValueError, AttributeError) as exc:
            logger.warning("social login: unexpected token or provider answer", exc_info=exc)
            self.add_error("token", get_headless_adapter().validation_error("invalid_token"))
            return self.cleaned_data


class ProviderTokenView(headless_views.ProviderTokenView):
    """`POST /_allauth/app/v1/auth/provider/token` with the input above; a body that is not a JSON
    object is a 400 in allauth's format too (allauth itself answers an empty text/html 400)."""

    input_class = ProviderTokenInput

    def handle(self, request, *args, **kwargs):
        try:
            data = json.loads(request.body or b"null")
        except ValueError:  # also UnicodeDecodeError
            data = None
        if not isinstance(data, dict):
            error = ValidationError("The body must be a JSON object.", code="invalid")
            return ErrorResponse(request, exception=error)
        return super().handle(request, *args, **kwargs)


allauth_provider_token = ProviderTokenView.as_api_view(client=Client.APP)


class LoginThrottleScope:
    """Social sign-ins share the password login's throttle (scope `login`, per client address)."""

    throttle_scope = "login"


@csrf_exempt  # the app client authenticates by tokens, never by cookies (so does allauth's view)
def provider_token(request, *args, **kwargs):
    """The provider-token view. A successful sign-in also sets the HttpOnly auth cookies and the
    CSRF cookie, as `POST /api/auth/token` does, so a browser frontend may use either mode. Done
    outside allauth's view, whose request context drops any CSRF cookie set inside it."""
    throttle = ScopedRateThrottle()
    if not throttle.allow_request(request, LoginThrottleScope):
        wait = math.ceil(throttle.wait())
        error = {"code": "too_many_requests", "message": f"Too many sign-ins; try again in {wait} s."}
        return JsonResponse(
            {"status": 429, "errors": [error]}, status=429, headers={"Retry-After": str(wait)}
        )
    response = allauth_provider_token(request, *args, **kwargs)
    if response.status_code == 200:
        meta = json.loads(response.content).get("meta") or {}
        if meta.get("access_token") and meta.get("refresh_token"):
            tokens = {"access": meta["access_token"], "refresh": meta["refresh_token"]}
            set_auth_cookies(request, response, tokens)
    return response
