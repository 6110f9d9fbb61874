"""Seed the six THB credit packages sold at launch (reversible: removes exactly these names)."""

from decimal import Decimal

from django.db import migrations

PACKAGES = [
    # name, credits, price, discount %, description
    ("Trial Pack", 1, Decimal("0.00"), 0, "One free credit to try the platform."),
    ("Starter Pack", 3, Decimal("99.00"), 0, "A few credits for occasional jobs."),
    ("Popular Pack", 10, Decimal("299.00"), 10, "Our most popular bundle."),
    ("Pro Pack", 25, Decimal("699.00"), 15, "For regular creators."),
    ("Business Pack", 50, Decimal("1299.00"), 20, "For teams with steady volume."),
    ("Enterprise Pack", 100, Decimal("2399.00"), 25, "The best price per credit."),
]


def seed(apps, schema_editor):
    CreditPackage = apps.get_model("credits", "CreditPackage")
    for order, (name, credits, price, discount, description) in enumerate(PACKAGES):
        CreditPackage.objects.update_or_create(
            name=name,
            defaults={
                "credits": credits,
                "price": price,
                "currency": "THB",
                "discount_percent": discount,
                "description": description,
                "is_active": True,
                "sort_order": order,
            },
        )


def unseed(apps, schema_editor):
    CreditPackage = apps.get_model("credits", "CreditPackage")
    # Packages that were already bought are kept (payments protect them); unused ones go.
    CreditPackage.objects.filter(name__in=[p[0] for p in PACKAGES], payments__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("credits", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
