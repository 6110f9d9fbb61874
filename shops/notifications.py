"""Emails about a shop, sent to the people who run it."""

import logging

from accounts.emails import email_send_after_commit
from shops.models import Item, Role, TeamMember

logger = logging.getLogger(__name__)


def low_stock_notify(*, shop_id, item_ids) -> int:
    """Tell the shop's owner and admins that these items reached their low-stock threshold.

    Called once per crossing (the `low_stock_crossed` signal fires only when a committed change
    takes an item from above its threshold to at or below it), so a shop is not emailed again
    for every sale while an item stays low. Members who turned email off in their preferences
    are skipped; each recipient gets their own message. Returns how many were queued.
    """
    items = list(
        Item.objects.filter(pk__in=item_ids, shop_id=shop_id)
        .select_related("shop")
        .order_by("sku")
        .only("sku", "name", "stock_quantity", "low_stock_threshold", "shop__name")
    )
    if not items:
        return 0
    members = (
        TeamMember.objects.filter(
            shop_id=shop_id,
            role__in=(Role.OWNER, Role.ADMIN),
            user__is_active=True,
            user__deleted_at__isnull=True,
        )
        .select_related("user__preferences")
        .order_by("created_at")
    )
    context = {
        "shop_name": items[0].shop.name,
        "items": [
            {"sku": i.sku, "name": i.name, "stock": i.stock_quantity, "threshold": i.low_stock_threshold}
            for i in items
        ],
    }
    sent = 0
    for member in members:
        preferences = getattr(member.user, "preferences", None)
        if preferences is not None and not preferences.notifications.get("email", True):
            continue
        email_send_after_commit(
            template="low_stock", to=[member.user.email], context={**context, "name": member.user.name}
        )
        sent += 1
    return sent


def on_low_stock_crossed(sender, *, shop_id, item_ids, **kwargs) -> None:
    low_stock_notify(shop_id=shop_id, item_ids=item_ids)
