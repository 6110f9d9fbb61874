"""Keep the JWT user-row cache (accounts.authentication.user_row_cache) honest: a user saved or
deleted through the ORM is dropped from it at once, so a deactivation, soft delete or tier
change is seen by the next request this process serves.

And every user, however created (the API, the admin, `createsuperuser`, a social login, a
shell), gets the rows every account has (preferences, a license) in the transaction that
inserts it."""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from accounts.authentication import user_row_cache
from accounts.models import User
from accounts.services import user_ensure_profile


@receiver(post_save, sender=User, dispatch_uid="accounts.user.ensure_profile")
def give_every_new_user_a_profile(sender, instance, created, raw=False, **kwargs):
    if created and not raw:
        user_ensure_profile(user=instance)


@receiver([post_save, post_delete], sender=User, dispatch_uid="accounts.user_row_cache.forget")
def forget_cached_user(sender, instance, **kwargs):
    user_row_cache.forget(instance.pk)
