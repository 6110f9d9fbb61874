from django.db.models import Prefetch, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import License, Subscription, User, UserPreferences


def user_get_profile(*, user_id) -> User:
    """The user with everything `/api/users/me` shows (accounts.serializers.UserSerializer), in
    two queries: the user row joined with its license and its balance (`credit_balance_now`, 0
    without a balance row), then its live subscription, if any, joined with its plan
    (`live_subscription`, or None)."""
    user = (
        User.objects.select_related("license")
        # Read by the reverse name: accounts never imports credits (the dependency direction).
        .annotate(credit_balance_now=Coalesce("credit_balance__balance", 0))
        .prefetch_related(
            Prefetch(
                "subscriptions",
                queryset=Subscription.objects.filter(status__in=Subscription.LIVE_STATUSES).select_related(
                    "plan"
                ),
                to_attr="live_subscriptions",
            )
        )
        .get(pk=user_id)
    )
    user.live_subscription = user.live_subscriptions[0] if user.live_subscriptions else None
    return user


def preferences_get(*, user: User) -> UserPreferences:
    """The user's preferences; the defaults (unsaved) for a user created without the row."""
    return UserPreferences.objects.filter(user=user).first() or UserPreferences(user=user)


def license_lapsed(*, user_id, now=None) -> bool:
    """True when the user's trial license has ended (expired, or past its end before the daily
    task marks it) and no live (`active` or `past_due`) subscription covers them (SPEC §12: such a
    user may not import new models). A user without a license row is not lapsed."""
    now = now or timezone.now()
    trial_over = License.objects.filter(
        Q(status=License.Status.EXPIRED) | Q(date_end__lte=now), user_id=user_id, type=License.Type.TRIAL
    ).exists()
    if not trial_over:
        return False
    return not Subscription.objects.filter(user_id=user_id, status__in=Subscription.LIVE_STATUSES).exists()
