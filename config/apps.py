from django.apps import AppConfig


class PlatformConfig(AppConfig):
    """`config` is also an app for the few tables every other app shares (ScheduledRun)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "config"
    label = "platform"
    verbose_name = "Platform"
