from django.db.models import Q
from django.utils import timezone

from accounts.models import License, Subscription, User, UserPreferences


def user_get_profile(*, user_id) -> User:
    """The user with everything `/api/users/me` shows, in one query."""
    return (
        User.objects.select_related("license", "preferences", "credit_balance")
        .prefetch_related("subscriptions__plan")
        .get(pk=user_id)
    )


def preferences_get(*, user: User) -> UserPreferences:
    """The user's preferences; the defaults (unsaved) for a user created without the row."""
    return UserPreferences.objects.filter(user=user).first() or UserPreferences(user=user)


def license_lapsed(*, user_id, now=None) -> bool:
    """True when the user's trial license has ended (expired, or past its end before the daily
    task marks it) and no live (`active` or `past_due`) subscription covers them (such a
    user may not import new models). A user without a license row is not lapsed."""
    now = now or timezone.now()
    trial_over = License.objects.filter(
        Q(status=License.Status.EXPIRED) | Q(date_end__lte=now), user_id=user_id, type=License.Type.TRIAL
    ).exists()
    if not trial_over:
        return False
    return not Subscription.objects.filter(user_id=user_id, status__in=Subscription.LIVE_STATUSES).exists()
