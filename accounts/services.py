"""Writes to accounts. Every function here is the only way its change is made."""

import logging
import uuid
from datetime import datetime

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.cache import cache
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode
from rest_framework import status
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.authentication import user_row_cache
from accounts.emails import email_send_after_commit
from accounts.models import (
    FREE_MODEL_LIMIT,
    License,
    ServiceApiKey,
    Subscription,
    Tier,
    User,
    UserPreferences,
)
from accounts.tokens import email_verification_tokens, password_reset_tokens
from config.exceptions import ApplicationError

logger = logging.getLogger(__name__)

PROFILE_FIELDS = ("name", "phone_number", "organization", "job_title", "country", "industry")


@transaction.atomic
def user_register(*, email: str, password: str, **profile) -> User:
    """Create a user with default preferences and a 30-day trial license.

    Raises ApplicationError(validation_error, 400) when the email is taken (compared
    case-insensitively; the database's unique index on lower(email) decides under races).
    """
    email = User.objects.normalize_email(email)
    user = User(email=email, **{k: v for k, v in profile.items() if k in PROFILE_FIELDS})
    validate_password(password, user=user)
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError:
        raise _email_taken() from None
    user_ensure_profile(user=user)
    email_verification_send(user=user)
    return user


@transaction.atomic
def user_ensure_profile(*, user: User) -> None:
    """Give a user the rows every account has: default preferences and, if it has no license
    yet, a 30-day trial from now. Idempotent (users made by the admin or createsuperuser)."""
    UserPreferences.objects.get_or_create(user=user)
    now = timezone.now()
    License.objects.get_or_create(
        user=user,
        defaults={
            "type": License.Type.TRIAL,
            "status": License.Status.ACTIVE,
            "date_start": now,
            "date_end": License.trial_end(now),
        },
    )


def user_record_login(*, user: User) -> None:
    """Stamp last_login (analytics reads it); one UPDATE, no signal round-trip."""
    now = timezone.now()
    User.objects.filter(pk=user.pk).update(last_login=now)
    user.last_login = now


def _token_not_valid() -> ApplicationError:
    return ApplicationError(
        "The refresh token is invalid or expired.",
        code="token_not_valid",
        status_code=status.HTTP_401_UNAUTHORIZED,
    )


@transaction.atomic
def token_refresh_rotate(*, raw: str) -> dict:
    """Exchange a refresh token for a new access/refresh pair; the presented one is blacklisted.

    Locks the presented token's OutstandingToken row, so concurrent presentations of one token
    rotate it exactly once and every other caller gets the 401 a reused token gets.
    Raises ApplicationError(token_not_valid, 401) for a malformed, expired, blacklisted or
    already-rotated token, and for one whose account is closed (soft-deleted, inactive) or gone.
    """
    try:
        token = RefreshToken(raw)
    except TokenError:
        raise _token_not_valid() from None
    user = User.objects.filter(
        pk=token.payload.get(jwt_settings.USER_ID_CLAIM), is_active=True, deleted_at__isnull=True
    ).first()
    if user is None:
        raise _token_not_valid()
    token.outstand()
    outstanding = OutstandingToken.objects.select_for_update().get(jti=token.payload[jwt_settings.JTI_CLAIM])
    _, created = BlacklistedToken.objects.get_or_create(token=outstanding)
    if not created:
        raise _token_not_valid()
    fresh = RefreshToken.for_user(user)
    return {"access": str(fresh.access_token), "refresh": str(fresh)}


def token_blacklist(*, raw: str) -> None:
    """Log out: blacklist the refresh token. Raises ApplicationError(token_not_valid, 401)
    when it is malformed, expired or already blacklisted."""
    try:
        RefreshToken(raw).blacklist()
    except TokenError:
        raise _token_not_valid() from None


def _email_taken() -> ApplicationError:
    return ApplicationError(
        "Invalid input.",
        code="validation_error",
        fields={"email": ["A user with this email already exists."]},
    )


@transaction.atomic
def user_update(*, user: User, **changes) -> User:
    """Change the profile fields a user may set; anything else is ignored by design."""
    fields = [k for k in changes if k in PROFILE_FIELDS]
    for name in fields:
        setattr(user, name, changes[name])
    if fields:
        user.save(update_fields=[*fields, "updated_at"])
    return user


@transaction.atomic
def user_soft_delete(*, user: User) -> None:
    """Close the account: it can no longer log in and its outstanding refresh tokens die.

    The row and everything pointing at it (ledger, jobs, shops) stay for the books.
    """
    User.objects.filter(pk=user.pk, deleted_at__isnull=True).update(
        deleted_at=timezone.now(), is_active=False, updated_at=timezone.now()
    )
    user_row_cache.forget(user.pk)  # its access tokens stop working with the next request
    outstanding = OutstandingToken.objects.filter(user=user, blacklistedtoken__isnull=True)
    BlacklistedToken.objects.bulk_create(
        [BlacklistedToken(token=token) for token in outstanding], ignore_conflicts=True
    )


def user_record_progress(*, user: User, time_spent_delta: int, step: int) -> User:
    """Add time, keep the highest step ever reached, remember the last step — in one UPDATE,
    so concurrent calls from two tabs never lose time or lower the maximum."""
    User.objects.filter(pk=user.pk).update(
        time_spent=F("time_spent") + time_spent_delta,
        max_step_reached=Greatest(F("max_step_reached"), step),
        last_session_final_step=step,
        updated_at=timezone.now(),
    )
    user_row_cache.forget(user.pk)
    user.refresh_from_db(fields=["time_spent", "max_step_reached", "last_session_final_step"])
    return user


@transaction.atomic
def preferences_update(*, user: User, **changes) -> UserPreferences:
    """Merge the given sections into the stored preferences (a partial update per section)."""
    prefs, _ = UserPreferences.objects.select_for_update().get_or_create(user=user)
    for section in ("video_defaults", "notifications", "ui"):
        if section in changes:
            setattr(prefs, section, {**getattr(prefs, section), **changes[section]})
    prefs.save()
    return prefs


def licenses_expire(*, now: datetime | None = None) -> int:
    """Expire every active license whose end has passed. Idempotent: returns how many moved."""
    now = now or timezone.now()
    return License.objects.filter(status=License.Status.ACTIVE, date_end__lte=now).update(
        status=License.Status.EXPIRED, updated_at=now
    )


@transaction.atomic
def subscriptions_expire(*, now: datetime | None = None) -> int:
    """Expire ended subscriptions and drop their users back to the free tier when no other
    active subscription remains. Idempotent."""
    now = now or timezone.now()
    ended = list(
        Subscription.objects.select_for_update()
        .filter(status__in=[Subscription.Status.ACTIVE, Subscription.Status.PAST_DUE], end_date__lte=now)
        .values_list("pk", "user_id")
    )
    if not ended:
        return 0
    Subscription.objects.filter(pk__in=[pk for pk, _ in ended]).update(
        status=Subscription.Status.EXPIRED, updated_at=now
    )
    user_ids = {user_id for _, user_id in ended}
    still_paying = set(
        Subscription.objects.filter(
            user_id__in=user_ids,
            status=Subscription.Status.ACTIVE,
            end_date__gt=now,
        ).values_list("user_id", flat=True)
    )
    User.objects.filter(pk__in=user_ids - still_paying).update(
        tier=Tier.FREE, model_limit=FREE_MODEL_LIMIT, updated_at=now
    )
    user_row_cache.forget(*(user_ids - still_paying))
    return len(ended)


@transaction.atomic
def subscription_activate(
    *,
    user: User,
    amount,
    currency: str,
    billing_cycle: str,
    start: datetime,
    end: datetime,
    model_limit: int = 100,
) -> Subscription:
    """Start a premium subscription: the user moves to the premium tier and its model limit."""
    sub = Subscription.objects.create(
        user=user,
        tier=Tier.PREMIUM,
        status=Subscription.Status.ACTIVE,
        amount=amount,
        currency=currency,
        billing_cycle=billing_cycle,
        model_limit=model_limit,
        start_date=start,
        end_date=end,
        next_billing_date=end,
    )
    User.objects.filter(pk=user.pk).update(tier=Tier.PREMIUM, model_limit=model_limit)
    user_row_cache.forget(user.pk)
    return sub


def api_key_create(*, name: str, scopes: list[str]) -> tuple[ServiceApiKey, str]:
    """Create a service key. The plain key is returned once and never stored."""
    if not name or not scopes:
        raise ApplicationError("A name and at least one scope are required.", code="validation_error")
    return ServiceApiKey.objects.create_key(name=name, scopes=scopes)


# -- account recovery and email verification (SPEC §12) ----------------------------------------


def _invalid_link() -> ApplicationError:
    return ApplicationError("This link is invalid or has expired.", code="invalid_token")


def _user_from_uid(uid: str) -> User | None:
    try:
        pk = uuid.UUID(force_str(urlsafe_base64_decode(uid)))
    except (ValueError, TypeError, UnicodeDecodeError):
        return None
    return User.objects.filter(pk=pk, is_active=True, deleted_at__isnull=True).first()


def _link(path: str, user: User, token: str) -> str:
    return f"{settings.FRONTEND_URL}{path}?uid={urlsafe_base64_encode(force_bytes(user.pk))}&token={token}"


def password_reset_request(*, email: str) -> None:
    """Email a reset link to the active account with this address, if there is one.

    Answers the same way whether or not the address has an account, so callers cannot probe
    for accounts. At most one email per address per PASSWORD_RESET_EMAIL_COOLDOWN seconds
    (a cache key). Sent after commit by Celery.
    """
    user = User.objects.filter(
        email__iexact=User.objects.normalize_email(email).strip(), is_active=True, deleted_at__isnull=True
    ).first()
    if user is None:
        return
    # The cache fails open (config/cache.py): with Redis down the email is sent anyway.
    if not cache.add(f"password-reset:{user.pk}", 1, timeout=settings.PASSWORD_RESET_EMAIL_COOLDOWN):
        return
    token = password_reset_tokens.make_token(user)
    email_send_after_commit(
        template="password_reset",
        to=[user.email],
        context={
            "name": user.name,
            "reset_url": _link("/reset-password", user, token),
            "valid_hours": settings.PASSWORD_RESET_TIMEOUT // 3600,
        },
    )


@transaction.atomic
def password_reset_confirm(*, uid: str, token: str, new_password: str) -> User:
    """Set a new password from a reset link, then end every session the account had.

    Locks the user row. The token (Django's generator) covers the password hash and last login,
    so it works once: after the change it no longer matches. Raises ApplicationError
    `invalid_token` (400) for a wrong, used or expired link, and validation_error (400) for a
    password the validators refuse. Every outstanding refresh token is blacklisted.
    """
    user = _user_from_uid(uid)
    if user is None:
        raise _invalid_link()
    user = User.objects.select_for_update().get(pk=user.pk)
    if not password_reset_tokens.check_token(user, token):
        raise _invalid_link()
    try:
        validate_password(new_password, user=user)
    except DjangoValidationError as exc:
        raise ApplicationError(
            "Invalid input.", code="validation_error", fields={"new_password": list(exc.messages)}
        ) from None
    user.set_password(new_password)
    user.save(update_fields=["password", "updated_at"])
    outstanding = OutstandingToken.objects.filter(user=user).exclude(blacklistedtoken__isnull=False)
    BlacklistedToken.objects.bulk_create(
        [BlacklistedToken(token=t) for t in outstanding], ignore_conflicts=True
    )
    return user


def email_verification_send(*, user: User) -> bool:
    """Email `user` a link confirming their address (after commit, by Celery). Returns False
    and sends nothing when the address is already verified."""
    user.refresh_from_db()  # request.user may be a few seconds old (accounts.authentication)
    if user.email_verified_at is not None:
        return False
    token = email_verification_tokens.make_token(user)
    email_send_after_commit(
        template="verify_email",
        to=[user.email],
        context={"name": user.name, "email": user.email, "verify_url": _link("/verify-email", user, token)},
    )
    return True


@transaction.atomic
def email_verify(*, uid: str, token: str) -> User:
    """Mark the address verified from a verification link. Locks the user row.

    Verifying an already verified address with its own (now spent) link is not an error: it
    answers the user as it is, so a double click is harmless. Raises `invalid_token` (400) for a
    wrong or expired link, or one issued for an address the account no longer has.
    """
    user = _user_from_uid(uid)
    if user is None:
        raise _invalid_link()
    user = User.objects.select_for_update().get(pk=user.pk)
    if user.email_verified_at is not None:
        return user
    if not email_verification_tokens.check_token(user, token):
        raise _invalid_link()
    user.email_verified_at = timezone.now()
    user.save(update_fields=["email_verified_at", "updated_at"])
    return user
