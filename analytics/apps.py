from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "analytics"

    def ready(self):
        from analytics.services.errors import on_server_failure
        from config.failures import server_failure

        # The server's own failures, reported from any app, land in the error log.
        server_failure.connect(on_server_failure, dispatch_uid="analytics.error_log_record")
