from decimal import Decimal

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import User
from shops import services
from shops.models import Form, Item, KeywordReply, PaymentMethod, SavedReply, Shop

DEMO_EMAIL = "demo@example.com"
DEMO_SHOP_SLUG = "demo-shop"
DEMO_FORM_SLUG = "demo-order-form"
DEMO_ITEMS = [
    ("TEE-BLK-M", "Black T-shirt (M)", "apparel", "299.00", "120.00", 40),
    ("TEE-WHT-M", "White T-shirt (M)", "apparel", "299.00", "120.00", 3),
    ("MUG-LOGO", "Logo mug", "homeware", "199.00", "70.00", 25),
    ("CAP-NVY", "Navy cap", "apparel", "349.00", "140.00", 0),
]


class Command(BaseCommand):
    help = "Give the demo user (demo@example.com, if it exists) a demo shop. Idempotent."

    @transaction.atomic
    def handle(self, *args, **options):
        user = User.objects.filter(email__iexact=DEMO_EMAIL).first()
        if user is None:
            self.stdout.write("seed_demo_shops: no demo user, skipped.")
            return
        shop = Shop.objects.filter(slug=DEMO_SHOP_SLUG).first()
        if shop is None:
            shop = services.shop_create(
                owner=user, name="Demo Shop", slug=DEMO_SHOP_SLUG, currency="THB", timezone="Asia/Bangkok"
            )
        for sku, name, category, price, cost, stock in DEMO_ITEMS:
            if not Item.objects.filter(shop=shop, sku=sku).exists():
                services.item_create(
                    shop=shop,
                    user=user,
                    sku=sku,
                    name=name,
                    category=category,
                    price=Decimal(price),
                    cost=Decimal(cost),
                    stock_quantity=stock,
                )
        Form.objects.get_or_create(slug=DEMO_FORM_SLUG, defaults={"shop": shop, "name": "Demo order form"})
        PaymentMethod.objects.get_or_create(
            shop=shop,
            name="PromptPay",
            defaults={"kind": PaymentMethod.Kind.PROMPTPAY, "details": {"promptpay_id": "0812345678"}},
        )
        KeywordReply.objects.get_or_create(
            shop=shop,
            reply="We ship within 2 working days.",
            defaults={
                "keywords": ["shipping", "delivery"],
                "match": KeywordReply.Match.CONTAINS,
                "priority": 10,
            },
        )
        SavedReply.objects.get_or_create(
            shop=shop, shortcut="/thanks", defaults={"title": "Thanks", "text": "Thank you for your order!"}
        )
        self.stdout.write(f"seed_demo_shops: demo shop ready, public form /api/public/forms/{DEMO_FORM_SLUG}")
