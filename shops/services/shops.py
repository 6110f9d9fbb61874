"""Shops and their teams."""

import secrets

from django.db import IntegrityError, transaction
from django.utils.text import slugify

from accounts.models import User
from config.exceptions import ApplicationError, Forbidden
from shops.models import Role, Shop, TeamMember

SHOP_FIELDS = ("name", "currency", "timezone", "plan", "plan_status", "plan_price", "billing_cycle")


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
