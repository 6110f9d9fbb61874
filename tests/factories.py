import factory
from django.utils import timezone

from accounts.models import License, User, UserPreferences

DEFAULT_PASSWORD = "correct-Horse-battery-9"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    name = factory.Faker("name")
    password = factory.PostGenerationMethodCall("set_password", DEFAULT_PASSWORD)

    @factory.post_generation
    def with_profile(obj, create, extracted, **kwargs):
        if create:
            obj.save()
            UserPreferences.objects.get_or_create(user=obj)
            now = timezone.now()
            License.objects.get_or_create(
                user=obj, defaults={"date_start": now, "date_end": License.trial_end(now)}
            )


def admin_login(client, user) -> None:
    """Log `user` into the test client as the admin login would leave them: password and, for
    staff, the TOTP second factor passed (a confirmed device, verified in this session)."""
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    client.force_login(user)
    if user.is_staff:
        device = TOTPDevice.objects.filter(user=user, confirmed=True).first() or TOTPDevice.objects.create(
            user=user, name="test", confirmed=True
        )
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
