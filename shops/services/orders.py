"""Orders placed through public forms, and their status changes."""

import re
from decimal import Decimal, InvalidOperation
from uuid import UUID

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from config.exceptions import ApplicationError, NotFound
from shops.models import Form, FormSubmission, FormSubmissionLine, OrderStatus, PaymentMethod
from shops.services.stock import order_process_stock_changes
from shops.states import ORDER_MACHINE

S = OrderStatus

STANDARD_FIELDS = {
    "name": "customer_name",
    "phone": "customer_phone",
    "email": "customer_email",
    "address": "customer_address",
}
FIELD_MAX_LENGTH = {"name": 200, "phone": 40, "email": 254, "address": 1000}
DEFAULT_MAX_LENGTH = 1000
PHONE_RE = re.compile(r"^\+?[0-9][0-9 ()\-]{4,28}[0-9]$")


def _validate_value(spec: dict, value) -> tuple[object, str | None]:
    kind = spec.get("type", "text")
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            return None, "Must be a number."
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            return None, "Must be a number."
        if not number.is_finite() or abs(number) > Decimal("1e12"):
            return None, "Must be a number."
        return str(number), None
    if not isinstance(value, str):
        return None, "Must be a string."
    if "\x00" in value:
        # PostgreSQL text and jsonb cannot hold NUL; refuse it here rather than fail on insert.
        return None, "Null characters are not allowed."
    value = value.strip()
    limit = FIELD_MAX_LENGTH.get(spec["name"], DEFAULT_MAX_LENGTH)
    if len(value) > limit:
        return None, f"At most {limit} characters."
    if not value:
        return value, None
    if kind == "email":
        try:
            validate_email(value)
        except ValidationError:
            return None, "Enter a valid email address."
    elif kind == "phone" and not PHONE_RE.match(value):
        return None, "Enter a valid phone number."
    elif kind == "select" and value not in spec.get("options", []):
        return None, "Not one of the allowed options."
    return value, None


def form_validate_customer(*, form: Form, customer: dict) -> tuple[dict, dict]:
    """Check the customer details against the form's field schema.

    Returns (model column values, extra answers). Standard keys (name, phone, email, address) are
    always accepted; other keys only when the form declares them. Raises
    ApplicationError(validation_error) with `customer.<field>` errors.
    """
    specs = {spec["name"]: spec for spec in form.fields}
    errors: dict[str, list[str]] = {}
    columns: dict[str, str] = {}
    extra: dict[str, object] = {}
    for key in customer:
        if key not in specs and key not in STANDARD_FIELDS:
            errors[f"customer.{key}"] = ["Unknown field."]
    for name in {*specs, *(k for k in customer if k in STANDARD_FIELDS)}:
        spec = specs.get(name, {"name": name, "type": "email" if name == "email" else "text"})
        value = customer.get(name)
        if value is None or value == "":
            if spec.get("required"):
                errors[f"customer.{name}"] = ["This field is required."]
            continue
        clean, error = _validate_value(spec, value)
        if error:
            errors[f"customer.{name}"] = [error]
        elif name in STANDARD_FIELDS:
            columns[STANDARD_FIELDS[name]] = clean
        else:
            extra[name] = clean
    if errors:
        raise ApplicationError("Invalid input.", code="validation_error", fields=errors)
    return columns, extra


@transaction.atomic
def order_submit(
    *, form: Form, customer: dict, lines: list[dict], payment_method_id: UUID | None = None, note: str = ""
) -> FormSubmission:
    """Place an order through a public form: validate, deduct stock, snapshot prices — atomically.

    Locks: the ordered items (pk order, via order_process_stock_changes). Lines of the same item
    are merged into one line. Raises ApplicationError(validation_error, 400) for bad customer
    details, items not offered by this form or an unusable payment method, and
    Conflict(insufficient_stock, 409) naming every short item; nothing persists then.
    """
    if not form.is_active:
        raise NotFound("Not found.")
    columns, extra = form_validate_customer(form=form, customer=customer)
    payment_method = None
    if payment_method_id is not None:
        payment_method = PaymentMethod.objects.filter(
            pk=payment_method_id, shop_id=form.shop_id, is_active=True
        ).first()
        if payment_method is None:
            raise ApplicationError(
                "Invalid input.",
                code="validation_error",
                fields={"payment_method_id": ["Unknown payment method."]},
            )
    quantities: dict[UUID, int] = {}
    for line in lines:
        quantities[line["item_id"]] = quantities.get(line["item_id"], 0) + line["quantity"]

    order = FormSubmission.objects.create(
        shop_id=form.shop_id,
        form=form,
        **columns,
        customer_extra=extra,
        note=note,
        currency=form.shop.currency,
        payment_method=payment_method,
        submitted_at=timezone.now(),
    )
    try:
        items = order_process_stock_changes(
            shop_id=form.shop_id, lines=quantities.items(), reference=f"order:{order.pk}"
        )
    except ApplicationError as exc:
        if exc.code == "validation_error":
            exc.fields = {"lines": (exc.fields or {}).get("items", ["Unknown or unavailable item."])}
        raise
    total = Decimal("0.00")
    order_lines = []
    for item_id, quantity in quantities.items():
        item = items[item_id]
        line_total = item.price * quantity
        total += line_total
        order_lines.append(
            FormSubmissionLine(
                submission=order,
                item=item,
                item_name=item.name,
                sku=item.sku,
                quantity=quantity,
                unit_price=item.price,
                unit_cost=item.cost,
                line_total=line_total,
                stock_deducted=item.track_stock,
            )
        )
    FormSubmissionLine.objects.bulk_create(order_lines)
    order.total = total
    order.save(update_fields=["total"])
    return order


@transaction.atomic
def order_transition(*, shop_id: UUID, order_id: UUID, to: str, user=None) -> FormSubmission:
    """The only writer of an order's status (a trigger refuses every other write): move it along
    ORDER_TRANSITIONS (shops/states.py) and perform the move's effect in the same transaction —
    cancelling gives its stock back (history rows, reason `cancellation`, by `user`).

    Locks: the order row, then (when cancelling) its items in pk order. Two concurrent cancels
    serialize on the order row; the second sees `cancelled` and gets 409, so stock is restocked
    exactly once (the database also refuses a second cancellation row per item and order).
    Raises NotFound for an order of another shop and InvalidTransition (409) for an illegal move,
    moving to the status it already has included.
    """
    order = (
        FormSubmission.objects.select_for_update(of=("self",)).filter(pk=order_id, shop_id=shop_id).first()
    )
    if order is None:
        raise NotFound("Not found.")
    ORDER_MACHINE.check(order.status, to)
    now = timezone.now()
    if to == S.CANCELLED:
        lines = list(order.lines.filter(stock_deducted=True).values_list("item_id", "quantity"))
        if lines:
            order_process_stock_changes(
                shop_id=shop_id, lines=lines, reference=f"order:{order.pk}", restock=True, user=user
            )
        order.cancelled_at = now
    ORDER_MACHINE.authorise(order.pk)
    order.status = to
    order.status_changed_at = now
    order.save(update_fields=["status", "status_changed_at", "cancelled_at", "updated_at"])
    return order
