from django.apps import AppConfig


class JobsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "jobs"

    def ready(self):
        from config.outside_calls import outside_call_finished
        from jobs import signals  # noqa: F401  (connects the credit handlers)
        from jobs.usage import on_outside_call_finished

        # Every outside call any app makes is recorded as an ApiUsageLog row.
        outside_call_finished.connect(on_outside_call_finished, dispatch_uid="jobs.api_usage_record")
