from decimal import Decimal

from django.db import transaction

from accounts.models import User
from config.commands import BaseCommand
from shops import services
from shops.models import (
    Form,
    FormSubmission,
    Item,
    KeywordReply,
    OrderStatus,
    PaymentMethod,
    SavedReply,
    Shop,
)

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
        self._orders_and_chat(shop)
        self.stdout.write(f"seed_demo_shops: demo shop ready, public form /api/public/forms/{DEMO_FORM_SLUG}")

    def _orders_and_chat(self, shop: Shop) -> None:
        """A few orders through the public form (stock moves with history; one cancelled, which
        restocks) and two customer conversations, one answered by the keyword reply. Only
        the first time: a shop that already has orders is left as it is."""
        if FormSubmission.objects.filter(shop=shop).exists():
            return
        form = Form.objects.get(slug=DEMO_FORM_SLUG)
        method = PaymentMethod.objects.get(shop=shop, name="PromptPay")
        items = {item.sku: item for item in Item.objects.filter(shop=shop)}
        customers = [
            {
                "name": "Somchai P.",
                "phone": "+66 81 234 5678",
                "email": "somchai@example.com",
                "address": "Bangkok",
            },
            {
                "name": "Nok S.",
                "phone": "+66 89 765 4321",
                "email": "nok@example.com",
                "address": "Chiang Mai",
            },
            {"name": "Anan K.", "phone": "+66 86 111 2222", "email": "", "address": "Phuket"},
        ]
        baskets = [
            [("TEE-BLK-M", 2), ("MUG-LOGO", 1)],
            [("MUG-LOGO", 3)],
            [("TEE-WHT-M", 1), ("TEE-BLK-M", 1)],
        ]
        orders = [
            services.order_submit(
                form=form,
                customer=customer,
                payment_method_id=method.pk,
                lines=[{"item_id": items[sku].pk, "quantity": qty} for sku, qty in basket],
            )
            for customer, basket in zip(customers, baskets, strict=True)
        ]
        services.order_transition(shop_id=shop.pk, order_id=orders[0].pk, to=OrderStatus.CONFIRMED)
        services.order_transition(shop_id=shop.pk, order_id=orders[2].pk, to=OrderStatus.CANCELLED)
        services.conversation_receive_message(
            shop=shop,
            channel="line",
            customer_handle="U-somchai",
            customer_name="Somchai P.",
            text="Hi, how long is shipping?",
        )
        services.conversation_receive_message(
            shop=shop,
            channel="facebook",
            customer_handle="fb-nok",
            customer_name="Nok S.",
            text="Do you have the cap in red?",
        )
