from django.apps import AppConfig


class ShopsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "shops"

    def ready(self):
        from credits.signals import payment_completed, payment_failed
        from shops import notifications
        from shops.services import plans
        from shops.signals import low_stock_crossed

        low_stock_crossed.connect(notifications.on_low_stock_crossed, dispatch_uid="shops.low_stock_email")
        # A shop plan is paid through credits' payments; credits announces what happened to them.
        payment_completed.connect(
            plans.shop_plan_payment_completed, dispatch_uid="shops.plan_payment_completed"
        )
        payment_failed.connect(plans.shop_plan_payment_failed, dispatch_uid="shops.plan_payment_failed")
