"""Writes to accounts. Every function here is the only way its change is made."""

import logging
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.cache import cache
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.db.models.functions import Greatest
from django.utils import timezone
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode
from rest_framework import status
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.authentication import token_predates_password, user_row_cache
from accounts.emails import email_send_after_commit
from accounts.events import CANCEL_REQUESTED, subscription_changed
from accounts.models import (
    FREE_MODEL_LIMIT,
    SUBSCRIPTION_GRACE_DAYS,
    License,
    ServiceApiKey,
    Subscription,
    SubscriptionPlan,
    Tier,
    User,
    UserPreferences,
)
from accounts.states import LICENSE_MACHINE, SUBSCRIPTION_MACHINE
from accounts.tokens import email_verification_tokens, password_reset_tokens
from config.exceptions import ApplicationError, Forbidden, NotFound

logger = logging.getLogger(__name__)

PROFILE_FIELDS = ("name", "phone_number", "organization", "job_title", "country", "industry")
# Set with PATCH /api/users/me only (not at registration): what a tax invoice names.
BILLING_FIELDS = ("tax_id", "billing_address")


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


def token_pair_issue(*, user: User) -> dict:
    """A fresh simplejwt pair for `user`: what every login answers (password or social)."""
    refresh = RefreshToken.for_user(user)
    return {"access": str(refresh.access_token), "refresh": str(refresh)}


@transaction.atomic
def user_mark_email_verified(*, user: User) -> User:
    """Record that the user's address is verified (a provider vouched for it at a social
    login). Idempotent: an already verified address keeps its first time. Locks the user row."""
    locked = User.objects.select_for_update(no_key=True).get(pk=user.pk)
    if locked.email_verified_at is None:
        locked.email_verified_at = timezone.now()
        locked.save(update_fields=["email_verified_at", "updated_at"])
    user.email_verified_at = locked.email_verified_at
    return user


@transaction.atomic
def user_claim_by_verified_email(*, user: User) -> User:
    """A social login proved ownership of the address of an account nobody had verified: the
    address becomes verified, and whoever registered the account with it loses it — its
    password is made unusable and every token issued so far dies (refresh tokens blacklisted,
    access tokens refused as older than the password change). Locks the user row."""
    locked = User.objects.select_for_update(no_key=True).get(pk=user.pk)
    now = timezone.now()
    fields = ["updated_at"]
    if locked.email_verified_at is None:
        locked.email_verified_at = now
        fields.append("email_verified_at")
    if locked.has_usable_password():
        locked.set_unusable_password()
        locked.password_changed_at = now
        fields += ["password", "password_changed_at"]
        outstanding = OutstandingToken.objects.filter(user=locked, blacklistedtoken__isnull=True)
        BlacklistedToken.objects.bulk_create(
            [BlacklistedToken(token=token) for token in outstanding], ignore_conflicts=True
        )
    locked.save(update_fields=fields)
    user_row_cache.forget(locked.pk)
    user.email_verified_at, user.password, user.password_changed_at = (
        locked.email_verified_at,
        locked.password,
        locked.password_changed_at,
    )
    return user


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
    already-rotated token, for one issued before the password last changed, and for one whose
    account is closed (soft-deleted, inactive) or gone.
    """
    try:
        token = RefreshToken(raw)
    except TokenError:
        raise _token_not_valid() from None
    user = User.objects.filter(
        pk=token.payload.get(jwt_settings.USER_ID_CLAIM), is_active=True, deleted_at__isnull=True
    ).first()
    if user is None or token_predates_password(user, token.payload):
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
    fields = [k for k in changes if k in PROFILE_FIELDS or k in BILLING_FIELDS]
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


@transaction.atomic
def license_transition(*, license: License, to: str, now: datetime | None = None) -> License:
    """The only writer of `License.status` (a trigger refuses every other write). Locks the user
    row, then the license row, checks the move against LICENSE_TRANSITIONS (accounts/states.py;
    InvalidTransition, 409, moving to the status it already has included) and writes it.
    A license moving back to `active` whose end has passed gets a new end (`License.trial_end`
    from now) so the daily task does not expire it again at once."""
    now = now or timezone.now()
    user_lock(user_id=license.user_id)
    locked = License.objects.select_for_update().get(pk=license.pk)
    LICENSE_MACHINE.check(locked.status, to)
    fields = ["status", "updated_at"]
    if to == License.Status.ACTIVE and locked.date_end <= now:
        locked.date_end = License.trial_end(now)
        fields.append("date_end")
    LICENSE_MACHINE.authorise(locked.pk)
    locked.status = to
    locked.save(update_fields=fields)
    return locked


def license_follow_subscription(*, subscription: Subscription, now: datetime | None = None) -> License:
    """Make the user's license say what their subscription pays for: `paid` and `active` until the
    end of the period plus the grace days while the subscription is live; `expired` (at once) when
    it ends. A license staff suspended or cancelled keeps that status (staff decide), though a
    live subscription still makes it `paid` with the new end. A user without a license gets one.

    Call inside the subscription's transaction, after locking the user row and the subscription
    (the lock order user → subscription → license); it locks the license row."""
    now = now or timezone.now()
    live = subscription.status in Subscription.LIVE_STATUSES
    license = License.objects.select_for_update().filter(user_id=subscription.user_id).first()
    if license is None:
        user_ensure_profile(user=User.objects.get(pk=subscription.user_id))
        license = License.objects.select_for_update().get(user_id=subscription.user_id)
    if live:
        license.type = License.Type.PAID
        grace = timedelta(days=SUBSCRIPTION_GRACE_DAYS)
        license.date_end = max(subscription.end_date + grace, license.date_start + timedelta(seconds=1))
        license.save(update_fields=["type", "date_end", "updated_at"])
        if license.status == License.Status.EXPIRED:
            license = license_transition(license=license, to=License.Status.ACTIVE, now=now)
        return license
    if license.type == License.Type.PAID and license.status == License.Status.ACTIVE:
        license.date_end = max(now, license.date_start + timedelta(seconds=1))
        license.save(update_fields=["date_end", "updated_at"])
        license = license_transition(license=license, to=License.Status.EXPIRED, now=now)
    return license


def licenses_due_to_expire(*, now: datetime):
    return License.objects.filter(status=License.Status.ACTIVE, date_end__lte=now)


def licenses_expire(*, now: datetime | None = None) -> int:
    """Expire every active license whose end has passed, each through `license_transition` in its
    own transaction (re-checked under its lock, so a concurrent change wins). Idempotent:
    returns how many moved."""
    now = now or timezone.now()
    expired = 0
    for pk in licenses_due_to_expire(now=now).order_by("pk").values_list("pk", flat=True):
        with transaction.atomic():
            license = License.objects.get(pk=pk)
            user_lock(user_id=license.user_id)
            if not licenses_due_to_expire(now=now).filter(pk=pk).exists():
                continue
            license_transition(license=license, to=License.Status.EXPIRED, now=now)
            expired += 1
    return expired


# -- the user row and its model slots --------------------------------------------------------------
# Lock order (docs/ARCHITECTURE.md, "Lock order"): job rows → the user row → the subscription row
# → the credit balance row. The user row is locked FOR NO KEY UPDATE, never FOR UPDATE: every row
# inserted with a foreign key to the user (a job, a ledger row, an artifact) takes FOR KEY SHARE
# on it, and FOR UPDATE would make such an insert wait, for instance a refund already holding the
# balance row behind a job creation that holds the user row and waits for that balance row.


class ModelLimitReached(Forbidden):
    code = "model_limit_reached"


def user_lock(*, user_id) -> bool:
    """Lock the user row until the caller's transaction ends (SELECT … FOR NO KEY UPDATE): the
    lock that serialises a user's quota checks, model slots and subscription changes. Call it
    inside a transaction, after any job row and before the credit balance row (the lock order
    above). Rows referring to the user can still be inserted meanwhile (see above). Returns
    whether the user exists."""
    locked = User.objects.select_for_update(no_key=True).filter(pk=user_id).values_list("pk", flat=True)
    return locked.first() is not None


def user_models_used_change(*, user_id, delta: int) -> None:
    """Take (`delta` > 0) or give back (`delta` < 0) model slots: the only writer of
    `User.models_used` (besides staff in the admin form).

    One conditional UPDATE of the user row, which locks it (FOR NO KEY UPDATE, like user_lock)
    until the caller's transaction ends. Taking re-checks `models_used + delta <= model_limit` on
    the row as it is after the lock (PostgreSQL re-evaluates the WHERE on the newest version),
    so concurrent takers queue and the limit can never be passed: raises ModelLimitReached (403)
    otherwise, changing nothing. Giving back never takes the count below zero (a CHECK
    constraint forbids it; the callers' `holds_model_slot` flag makes each give-back happen
    once). Raises ValueError for a zero or non-integer delta.
    """
    if not isinstance(delta, int) or isinstance(delta, bool) or delta == 0:
        raise ValueError(f"delta must be a non-zero integer, got {delta!r}")
    if delta > 0:
        taken = User.objects.filter(pk=user_id, models_used__lte=F("model_limit") - delta).update(
            models_used=F("models_used") + delta
        )
        if not taken:
            raise ModelLimitReached("You have reached your model limit; upgrade to import more models.")
        return
    User.objects.filter(pk=user_id, models_used__gt=0).update(
        models_used=Greatest(F("models_used") + delta, 0)
    )


# -- subscriptions -------------------------------------------------------------------------------
# Lock order everywhere: (the payment row, in credits) → the user row → the subscription row.


class NoSubscription(NotFound):
    code = "not_found"


def subscription_lock_live(user_id) -> Subscription | None:
    """Lock the user row, then the user's live subscription, and return it (None if none). Call
    inside a transaction: this is the lock order every subscription write follows."""
    user_lock(user_id=user_id)
    return (
        Subscription.objects.select_for_update(of=("self",))
        .select_related("plan")
        .filter(user_id=user_id, status__in=Subscription.LIVE_STATUSES)
        .first()
    )


def _user_set_tier(user_id, *, tier: str, model_limit: int, now: datetime) -> None:
    User.objects.filter(pk=user_id).update(tier=tier, model_limit=model_limit, updated_at=now)
    user_row_cache.forget(user_id)


@transaction.atomic
def subscription_transition(
    *, subscription: Subscription, to: str, now: datetime | None = None
) -> Subscription:
    """The only writer of `Subscription.status` (a trigger refuses every other write). Locks the
    user row, then the subscription row, checks the move against SUBSCRIPTION_TRANSITIONS
    (accounts/states.py; InvalidTransition, 409) and applies its
    effect on the user: `active` gives the subscription's tier and model limit, `past_due` keeps
    them for the grace period (SUBSCRIPTION_GRACE_DAYS), `cancelled` and `expired` drop the user to
    the free tier (models already imported stay; new imports over the limit are refused) and
    expire a paid license (`license_follow_subscription`). A move to `past_due` starts the grace
    at the period's end when that is still ahead (a renewal opened early failed early). After the
    move it sends `accounts.events.subscription_changed` (event = the new status) in the same
    transaction: the lifecycle emails. Moving to the status it already has returns it unchanged
    and sends nothing."""
    now = now or timezone.now()
    user_lock(user_id=subscription.user_id)
    sub = Subscription.objects.select_for_update().get(pk=subscription.pk)
    if sub.status == to:
        return sub
    SUBSCRIPTION_MACHINE.check(sub.status, to)
    SUBSCRIPTION_MACHINE.authorise(sub.pk)
    sub.status = to
    # A renewal opens RENEWAL_REMINDER_DAYS before the period ends, so it can fail before then:
    # the grace still counts from the end of the period the user paid for.
    sub.past_due_since = max(now, sub.end_date) if to == Subscription.Status.PAST_DUE else None
    if to in (Subscription.Status.CANCELLED, Subscription.Status.EXPIRED):
        sub.auto_renew = False
        sub.next_billing_date = None
        _user_set_tier(sub.user_id, tier=Tier.FREE, model_limit=FREE_MODEL_LIMIT, now=now)
    elif to == Subscription.Status.ACTIVE:
        _user_set_tier(sub.user_id, tier=sub.tier, model_limit=sub.model_limit, now=now)
    sub.save(update_fields=["status", "past_due_since", "auto_renew", "next_billing_date", "updated_at"])
    license_follow_subscription(subscription=sub, now=now)
    subscription_changed.send(sender=Subscription, subscription=sub, event=to, now=now)
    return sub


@transaction.atomic
def subscription_activate(*, user_id, plan: SubscriptionPlan, now: datetime | None = None) -> Subscription:
    """A payment for `plan` succeeded: start a subscription, or extend the live one by a period.

    Locks the user row, then the live subscription. Without a live subscription a new one starts
    now. With one (a renewal, a payment during the grace period, or a second purchase) its period
    is extended from its current end (from now if that end is already past the grace period),
    it takes the plan's price, cycle and limit, renews again (a cancellation is undone) and is
    `active`. The user gets the plan's tier and model limit. The caller makes this happen once per
    payment (credits.services.payment_complete holds the payment row lock and checks its status);
    the partial unique index keeps one live subscription per user whatever the concurrency.
    The user's license becomes `paid` until the new end (`license_follow_subscription`)."""
    now = now or timezone.now()
    live = subscription_lock_live(user_id)
    if live is None:
        live = Subscription(user_id=user_id, status=Subscription.Status.ACTIVE, start_date=now)
        anchor = now
    else:
        grace = timedelta(days=SUBSCRIPTION_GRACE_DAYS)
        anchor = live.end_date if live.end_date + grace > now else now
    end = plan.period_end(anchor)
    live.plan = plan
    live.tier = plan.tier
    live.billing_cycle = plan.billing_cycle
    live.amount = plan.price
    live.currency = plan.currency
    live.model_limit = plan.model_limit
    live.end_date = end
    live.next_billing_date = end
    live.auto_renew = True
    live.cancelled_at = None
    live.save()
    if live.status == Subscription.Status.PAST_DUE:
        return subscription_transition(subscription=live, to=Subscription.Status.ACTIVE, now=now)
    _user_set_tier(user_id, tier=live.tier, model_limit=live.model_limit, now=now)
    license_follow_subscription(subscription=live, now=now)
    return live


@transaction.atomic
def subscription_payment_failed(
    *, subscription_id, period_start: datetime, now: datetime | None = None
) -> Subscription:
    """The renewal payment for the period starting at `period_start` failed: an `active`
    subscription still at that period becomes `past_due` (grace starts now). Anything else (a
    late notice for an older period, a subscription already past due or ended) changes nothing.
    Locks the user row, then the subscription."""
    sub = Subscription.objects.only("user_id").get(pk=subscription_id)
    live = subscription_lock_live(sub.user_id)
    if live is None or live.pk != sub.pk or live.status != Subscription.Status.ACTIVE:
        return Subscription.objects.get(pk=subscription_id)
    if live.end_date != period_start:
        return live
    return subscription_transition(subscription=live, to=Subscription.Status.PAST_DUE, now=now)


@transaction.atomic
def subscription_cancel(*, user: User, now: datetime | None = None) -> Subscription:
    """Cancel the caller's live subscription at the end of its period: it stops renewing and keeps
    its tier until `end_date`, when the daily task moves it to `cancelled`. Cancelling twice returns
    it unchanged. Raises NoSubscription (404) when there is no live subscription. Locks the user
    row, then the subscription. The first cancel sends `subscription_changed` (event
    `cancel_requested`) in its transaction: the cancellation email."""
    now = now or timezone.now()
    live = subscription_lock_live(user.pk)
    if live is None:
        raise NoSubscription("You have no active subscription.")
    if live.cancelled_at is None:
        live.cancelled_at = now
        live.auto_renew = False
        live.next_billing_date = None
        live.save(update_fields=["cancelled_at", "auto_renew", "next_billing_date", "updated_at"])
        subscription_changed.send(sender=Subscription, subscription=live, event=CANCEL_REQUESTED, now=now)
    return live


def subscriptions_due_to_end(*, now: datetime):
    """Live subscriptions the daily task must end now: cancelled or not renewing at their end,
    past due for longer than the grace period, or renewing but unpaid that long after their end."""
    grace = timedelta(days=SUBSCRIPTION_GRACE_DAYS)
    return Subscription.objects.filter(
        Q(status=Subscription.Status.ACTIVE, auto_renew=False, end_date__lte=now)
        | Q(status=Subscription.Status.ACTIVE, end_date__lte=now - grace)
        | Q(status=Subscription.Status.PAST_DUE, past_due_since__lte=now - grace)
    )


def subscriptions_expire(*, now: datetime | None = None) -> int:
    """End every subscription `subscriptions_due_to_end` finds, each in its own transaction through
    `subscription_transition` (cancelled ones → `cancelled`, others → `expired`; the user drops
    to the free tier). Each row is re-checked under its lock, so a payment that lands meanwhile
    wins and a second run changes nothing. Returns how many ended."""
    now = now or timezone.now()
    ended = 0
    for pk in subscriptions_due_to_end(now=now).order_by("pk").values_list("pk", flat=True):
        with transaction.atomic():
            sub = Subscription.objects.get(pk=pk)
            subscription_lock_live(sub.user_id)
            if not subscriptions_due_to_end(now=now).filter(pk=pk).exists():
                continue
            to = Subscription.Status.CANCELLED if sub.cancelled_at else Subscription.Status.EXPIRED
            subscription_transition(subscription=sub, to=to, now=now)
            ended += 1
    return ended


def api_key_create(
    *, name: str, scopes: list[str], job_kinds: list[str] | None = None
) -> tuple[ServiceApiKey, str]:
    """Create a service key (a `jobs:work` key may be bound to `job_kinds`, codes). The plain key
    is returned once and never stored."""
    if not name or not scopes:
        raise ApplicationError("A name and at least one scope are required.", code="validation_error")
    return ServiceApiKey.objects.create_key(name=name, scopes=scopes, job_kinds=list(job_kinds or []))


# -- account recovery and email verification ---------------------------------------------------


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
    # False only when the cooldown key exists; with Redis down the cache fails open (config/cache.py)
    # and `add` answers None: the email is sent anyway.
    if cache.add(f"password-reset:{user.pk}", 1, timeout=settings.PASSWORD_RESET_EMAIL_COOLDOWN) is False:
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
    user = User.objects.select_for_update(no_key=True).get(pk=user.pk)
    if not password_reset_tokens.check_token(user, token):
        raise _invalid_link()
    try:
        validate_password(new_password, user=user)
    except DjangoValidationError as exc:
        raise ApplicationError(
            "Invalid input.", code="validation_error", fields={"new_password": list(exc.messages)}
        ) from None
    user.set_password(new_password)
    # A reset ends every token even when the new password equals the old one: whoever asked
    # for the link may be the only one who should still be signed in.
    user.password_changed_at = timezone.now()
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
    user = User.objects.select_for_update(no_key=True).get(pk=user.pk)
    if user.email_verified_at is not None:
        return user
    if not email_verification_tokens.check_token(user, token):
        raise _invalid_link()
    user.email_verified_at = timezone.now()
    user.save(update_fields=["email_verified_at", "updated_at"])
    return user
