"""Shops and their teams."""

import secrets
from decimal import Decimal

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from accounts.models import User
from config.exceptions import ApplicationError, Forbidden
from shops.models import Item, Role, Shop, TeamMember

# What an owner may set; the plan fields change only through shop_plan_change (billing/staff).
SHOP_FIELDS = ("name", "currency", "timezone")


def _slug_from(name: str) -> str:
    base = slugify(name)[:60] or "shop"
    return f"{base}-{secrets.token_hex(3)}"


@transaction.atomic
def shop_create(*, owner: User, name: str, slug: str | None = None, **fields) -> Shop:
    """Create a shop and make `owner` its owner member.

    Raises ApplicationError(validation_error) when an explicit slug is taken; a generated slug
    gets a random suffix, so it only collides by extraordinary luck (then the same error).
    """
    shop = Shop(
        owner=owner,
        name=name,
        slug=slug or _slug_from(name),
        **{k: v for k, v in fields.items() if k in SHOP_FIELDS},
    )
    try:
        with transaction.atomic():
            shop.save()
    except IntegrityError:
        raise ApplicationError(
            "Invalid input.", code="validation_error", fields={"slug": ["This slug is taken."]}
        ) from None
    TeamMember.objects.create(shop=shop, user=owner, role=Role.OWNER)
    return shop


@transaction.atomic
def shop_update(*, shop: Shop, **fields) -> Shop:
    names = [k for k in fields if k in (*SHOP_FIELDS, "slug")]
    for name in names:
        setattr(shop, name, fields[name])
    if names:
        try:
            with transaction.atomic():
                shop.save(update_fields=[*names, "updated_at"])
        except IntegrityError:
            raise ApplicationError(
                "Invalid input.", code="validation_error", fields={"slug": ["This slug is taken."]}
            ) from None
    return shop


def _check_assignable(role: str) -> None:
    if role == Role.OWNER:
        raise ApplicationError(
            "Invalid input.", code="validation_error", fields={"role": ["The owner role cannot be assigned."]}
        )


def _refuse_owner(member: TeamMember) -> None:
    if member.role == Role.OWNER:
        raise Forbidden("The owner's membership cannot be changed or removed.", code="owner_membership")


@transaction.atomic
def member_update_role(*, member: TeamMember, role: str) -> TeamMember:
    _check_assignable(role)
    _refuse_owner(member)
    member.role = role
    member.save(update_fields=["role", "updated_at"])
    return member


@transaction.atomic
def member_remove(*, member: TeamMember) -> None:
    _refuse_owner(member)
    member.delete()


@transaction.atomic
def shop_plan_change(
    *,
    shop: Shop,
    plan: str,
    plan_status: str | None = None,
    plan_price: Decimal | None = None,
    billing_cycle: str | None = None,
) -> Shop:
    """The billing service's way to change a shop's plan (used by staff tools and billing; the
    shops API refuses these fields). Locks the shop row. Raises ApplicationError
    (validation_error) for a value outside the model's choices or a negative price."""
    locked = Shop.objects.select_for_update().get(pk=shop.pk)
    changes = {
        "plan": plan,
        "plan_status": plan_status,
        "plan_price": plan_price,
        "billing_cycle": billing_cycle,
    }
    for name, value in changes.items():
        if value is not None:
            setattr(locked, name, value)
    names = [name for name, value in changes.items() if value is not None]
    try:
        locked.full_clean(exclude=[f.name for f in Shop._meta.fields if f.name not in names])
    except DjangoValidationError as exc:
        raise ApplicationError(
            "Invalid input.",
            code="validation_error",
            fields={k: [str(m) for m in v] for k, v in exc.message_dict.items()},
        ) from None
    locked.save(update_fields=[*names, "updated_at"])
    return locked


@transaction.atomic
def shop_delete(*, shop: Shop) -> None:
    """Delete a shop and everything in it.

    Locks the shop row, then its items (in id order, as stock moves do), before Django collects
    the rows to cascade: a concurrent stock move or order either committed before (its history
    and lines are collected and deleted with the items) or waits and then finds no item, so the
    cascade never meets a row it did not collect (the IntegrityError of issue 9). Concurrent
    inserts into the shop (items, forms) wait on the shop row lock and then fail their foreign
    key, which their services answer as 404/409.
    """
    locked = Shop.objects.select_for_update().filter(pk=shop.pk).first()
    if locked is None:
        return
    list(Item.objects.select_for_update().filter(shop=locked).order_by("pk").values_list("pk", flat=True))
    locked.delete()
