from django.apps import AppConfig


class ShopsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "shops"

    def ready(self):
        from shops import notifications
        from shops.signals import low_stock_crossed

        low_stock_crossed.connect(notifications.on_low_stock_crossed, dispatch_uid="shops.low_stock_email")
