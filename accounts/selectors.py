from django.db.models import FilteredRelation, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import License, Subscription, User, UserPreferences


def user_get_profile(*, user_id) -> User:
    """The user with everything `/api/users/me` shows (accounts.serializers.UserSerializer), in
    one query: the user row joined with its license, its balance (`credit_balance_now`, 0
    without a balance row) and its live subscription with the plan (`live_subscription`, or
    None; the database allows one live subscription per user). Raises User.DoesNotExist."""
    user = (
        User.objects.annotate(
            live_subscription=FilteredRelation(
                "subscriptions", condition=Q(subscriptions__status__in=Subscription.LIVE_STATUSES)
            ),
            # Read by the reverse name: accounts never imports credits (the dependency direction).
            credit_balance_now=Coalesce("credit_balance__balance", 0),
        )
        .select_related("license", "live_subscription__plan")
        .get(pk=user_id)
    )
    if not hasattr(user, "live_subscription"):  # the outer join found none
        user.live_subscription = None
    return user


def preferences_get(*, user: User) -> UserPreferences:
    """The user's preferences; the defaults (unsaved) for a user created without the row."""
    return UserPreferences.objects.filter(user=user).first() or UserPreferences(user=user)


def license_blocked(*, user_id) -> str | None:
    """The license status that refuses every new job (`suspended` by staff, `cancelled`), or None."""
    return (
        License.objects.filter(
            user_id=user_id, status__in=(License.Status.SUSPENDED, License.Status.CANCELLED)
        )
        .values_list("status", flat=True)
        .first()
    )


def license_lapsed(*, user_id, now=None) -> bool:
    """True when the user's trial license has ended (expired, or past its end before the daily
    task marks it) and no live (`active` or `past_due`) subscription covers them (such a
    user may not import new models). A paid license that expired with its subscription leaves
    the user on the free tier, within its model limit. A user without a license row is not
    lapsed."""
    now = now or timezone.now()
    trial_over = License.objects.filter(
        Q(status=License.Status.EXPIRED) | Q(date_end__lte=now), user_id=user_id, type=License.Type.TRIAL
    ).exists()
    if not trial_over:
        return False
    return not Subscription.objects.filter(user_id=user_id, status__in=Subscription.LIVE_STATUSES).exists()


def email_notifications_wanted(*, user_id) -> bool:
    """Whether the user lets us send notification emails they can opt out of: the
    `notifications.email` preference (on by default, and for a user without the row), the
    switch job-finished and low-stock emails honour too. Transactional emails (a receipt, a
    failed renewal, a cancellation) are sent whatever it says."""
    notifications = (
        UserPreferences.objects.filter(user_id=user_id).values_list("notifications", flat=True).first()
    )
    return bool((notifications or {}).get("email", True))
