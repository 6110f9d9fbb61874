from django.apps import AppConfig


class PlatformConfig(AppConfig):
    """`config` is also an app for the few tables every other app shares (ScheduledRun)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "config"
    label = "platform"
    verbose_name = "Platform"

    def ready(self):
        import os

        from django.conf import settings

        from config import checks  # noqa: F401  (registers the system checks)
        from config.updated_at import register_updated_at_triggers

        # Every app's models are loaded by now: their `updated_at` triggers join their migrations.
        register_updated_at_triggers()

        # The upload spool folder (config/uploads.py) is ours alone: made here, before Django's
        # check that it exists (files.E001) and before the first upload.
        os.makedirs(settings.FILE_UPLOAD_TEMP_DIR, exist_ok=True)
