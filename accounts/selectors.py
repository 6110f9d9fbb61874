from accounts.models import User


def user_get_profile(*, user_id) -> User:
    """The user with everything `/api/users/me` shows, in one query."""
    return (User.objects.select_related("license", "preferences")
            .prefetch_related("subscriptions")
            .get(pk=user_id))
