"""Keep the JWT user-row cache (accounts.authentication.user_row_cache) honest: a user saved or
deleted through the ORM is dropped from it at once, so a deactivation, soft delete or tier
change is seen by the next request this process serves."""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from accounts.authentication import user_row_cache
from accounts.models import User


@receiver([post_save, post_delete], sender=User, dispatch_uid="accounts.user_row_cache.forget")
def forget_cached_user(sender, instance, **kwargs):
    user_row_cache.forget(instance.pk)
