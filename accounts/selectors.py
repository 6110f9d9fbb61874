from accounts.models import User, UserPreferences


def user_get_profile(*, user_id) -> User:
    """The user with everything `/api/users/me` shows, in one query."""
    return (
        User.objects.select_related("license", "preferences", "credit_balance")
        .prefetch_related("subscriptions")
        .get(pk=user_id)
    )


def preferences_get(*, user: User) -> UserPreferences:
    """The user's preferences; the defaults (unsaved) for a user created without the row."""
    return UserPreferences.objects.filter(user=user).first() or UserPreferences(user=user)
