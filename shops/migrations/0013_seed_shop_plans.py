"""Seed the shop plans (THB; admin-editable afterwards). Null limits are unlimited."""

from decimal import Decimal

from django.db import migrations

PLANS = [
    # code, name, monthly, yearly, items, members, forms, outbound messages per month
    ("free", "Free", "0.00", "0.00", 100, 5, 10, 1000),
    ("basic", "Basic", "290.00", "2900.00", 1000, 10, 20, 10000),
    ("pro", "Pro", "990.00", "9900.00", 10000, 25, 100, 50000),
    ("enterprise", "Enterprise", "4900.00", "49000.00", None, None, None, None),
]


def seed(apps, schema_editor):
    ShopPlan = apps.get_model("shops", "ShopPlan")
    for order, (code, name, monthly, yearly, items, members, forms, outbound) in enumerate(PLANS):
        ShopPlan.objects.update_or_create(
            code=code,
            defaults={
                "name": name,
                "price_monthly": Decimal(monthly),
                "price_yearly": Decimal(yearly),
                "currency": "THB",
                "max_items": items,
                "max_members": members,
                "max_forms": forms,
                "max_outbound_messages_per_month": outbound,
                "sort_order": order,
            },
        )


def unseed(apps, schema_editor):
    apps.get_model("shops", "ShopPlan").objects.filter(code__in=[p[0] for p in PLANS]).delete()


class Migration(migrations.Migration):
    dependencies = [("shops", "0012_shop_plans")]

    operations = [migrations.RunPython(seed, unseed)]
