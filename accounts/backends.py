from django.contrib.auth.backends import ModelBackend


class EmailBackend(ModelBackend):
    """Email login, case-insensitive; inactive (soft-deleted) users never authenticate.

    ModelBackend already runs the password hasher for unknown emails too, so a wrong password
    and an unknown email take the same time and give the same answer.
    """

    def authenticate(self, request, username=None, password=None, email=None, **kwargs):
        return super().authenticate(request, username=email or username, password=password, **kwargs)

    def user_can_authenticate(self, user):
        # A closed account stays closed even if staff tick is_active again by mistake.
        return super().user_can_authenticate(user) and getattr(user, "deleted_at", None) is None
