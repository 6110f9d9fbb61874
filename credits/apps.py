from django.apps import AppConfig


class CreditsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "credits"

    def ready(self):
        from accounts.events import subscription_changed
        from credits.emails import on_subscription_changed

        # Lifecycle emails of subscriptions (accounts cannot import credits; it signals upward).
        subscription_changed.connect(
            on_subscription_changed, dispatch_uid="credits.emails.on_subscription_changed"
        )
