"""Analytics test data: orders placed and cancelled at chosen instants (the order service stamps
`now`, so the instants are set afterwards on the rows, as a clock would have)."""

from datetime import datetime
from decimal import Decimal

from shops.models import FormSubmission, OrderStatus
from shops.services.orders import order_transition
from tests.shops.factories import CUSTOMER, make_form, place_order


def order_at(
    shop, at: datetime, lines: list[tuple], *, phone: str | None = None, email: str | None = None, form=None
) -> FormSubmission:
    """An order of `lines` [(item, qty)] placed through the real service, dated `at`."""
    form = form or make_form(shop)
    order = place_order(form, lines)
    FormSubmission.objects.filter(pk=order.pk).update(
        submitted_at=at,
        customer_phone=phone if phone is not None else CUSTOMER["phone"],
        customer_email=email if email is not None else CUSTOMER["email"],
    )
    order.refresh_from_db()
    return order


def cancel_at(order: FormSubmission, at: datetime) -> FormSubmission:
    """Cancel through the real service (restocks), then date the cancellation `at`."""
    order_transition(shop_id=order.shop_id, order_id=order.pk, to=OrderStatus.CANCELLED)
    FormSubmission.objects.filter(pk=order.pk).update(cancelled_at=at, status_changed_at=at)
    order.refresh_from_db()
    return order


def money(value: str) -> Decimal:
    return Decimal(value)
