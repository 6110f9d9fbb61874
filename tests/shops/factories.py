"""Shops test data. Items are made through the service so their history chain starts right."""

import itertools
from decimal import Decimal

from shops import services
from shops.models import Form, Item, PaymentMethod, Role, Shop, StockHistory, TeamMember
from tests.factories import UserFactory

_seq = itertools.count(1)


def make_shop(owner=None, **fields) -> Shop:
    owner = owner or UserFactory()
    n = next(_seq)
    # The plan fields are not the owner's to set: billing sets them (shop_plan_change).
    plan = {k: fields.pop(k) for k in ("plan", "plan_status", "plan_price", "billing_cycle") if k in fields}
    shop = services.shop_create(
        owner=owner, name=fields.pop("name", f"Shop {n}"), slug=fields.pop("slug", f"shop-{n}"), **fields
    )
    if plan:
        shop = services.shop_plan_change(shop=shop, plan=plan.pop("plan", shop.plan), **plan)
    return shop


def make_member(shop: Shop, role: str, user=None) -> TeamMember:
    if role == Role.OWNER:
        return TeamMember.objects.get(shop=shop, role=Role.OWNER)
    return TeamMember.objects.create(shop=shop, user=user or UserFactory(), role=role)


def make_item(shop: Shop, stock: int = 10, **fields):
    n = next(_seq)
    defaults = {
        "sku": f"SKU-{n}",
        "name": f"Item {n}",
        "price": Decimal("100.00"),
        "cost": Decimal("40.00"),
        "low_stock_threshold": 2,
    }
    return services.item_create(shop=shop, stock_quantity=stock, **{**defaults, **fields})


def make_form(shop: Shop, **fields) -> Form:
    n = next(_seq)
    return Form.objects.create(
        shop=shop, name=fields.pop("name", f"Form {n}"), slug=fields.pop("slug", f"form-{n}"), **fields
    )


def make_payment_method(shop: Shop, **fields) -> PaymentMethod:
    return PaymentMethod.objects.create(
        shop=shop, kind=fields.pop("kind", "promptpay"), name=fields.pop("name", "PromptPay"), **fields
    )


CUSTOMER = {
    "name": "Somchai",
    "phone": "+66 81 234 5678",
    "email": "somchai@example.com",
    "address": "1 Sukhumvit Rd, Bangkok",
}


def place_order(form: Form, lines: list[tuple], **kwargs):
    return services.order_submit(
        form=form,
        customer=dict(CUSTOMER),
        lines=[{"item_id": item.pk, "quantity": qty} for item, qty in lines],
        **kwargs,
    )


def assert_chain(item: Item) -> None:
    """The stock-history invariant: rows chain, the newest after equals the stock, nothing negative."""
    item.refresh_from_db()
    rows = list(
        StockHistory.objects.filter(item=item)
        .order_by("id")
        .values_list("quantity_before", "change", "quantity_after")
    )
    for (_, _, prev_after), (before, _, _) in zip(rows, rows[1:], strict=False):
        assert before == prev_after, rows
    for before, change, after in rows:
        assert before >= 0 and after >= 0 and after == before + change, rows
    assert (rows[-1][2] if rows else 0) == item.stock_quantity, (rows[-1:], item.stock_quantity)
    assert item.stock_quantity >= 0
