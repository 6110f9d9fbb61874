"""Emails about a shop, sent to the people who run it."""

from datetime import UTC, datetime, timedelta

from celery import shared_task
from django.conf import settings

from accounts.emails import (
    EMAIL_TASK_OPTIONS,
    email_send,
    email_send_after_commit,
    email_task_after_commit,
    utc_text,
)
from accounts.selectors import email_notifications_wanted
from credits.emails import OPTIONAL_KINDS, PAYABLE, checkout_web_url, lifecycle_email_once
from credits.models import EmailSent
from shops.models import SHOP_PLAN_GRACE_DAYS, Item, Role, Shop, ShopPlanPayment, ShopSubscription, TeamMember


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


# -- shop plan lifecycle emails ------------------------------------------------------------------
# The subscription emails of credits.emails, sent to the shop's owner about its paid plan, with
# the same machinery: one EmailSent row per (owner, kind, shop subscription, period end) inserted
# in the event's transaction, the email queued after commit. Renewal upcoming (the daily
# `shops.renew_plans`, after it opened the renewal RENEWAL_REMINDER_DAYS early) and expired
# honour the owner's `notifications.email`; renewal failed is always sent.

PLAN_TEMPLATES = {
    EmailSent.Kind.RENEWAL_UPCOMING: "shop_plan_renewal_upcoming",
    EmailSent.Kind.RENEWAL_FAILED: "shop_plan_renewal_failed",
    EmailSent.Kind.SUBSCRIPTION_EXPIRED: "shop_plan_expired",
}


def shop_plan_email_once(*, subscription: ShopSubscription, kind: str) -> bool:
    """Record `kind` about the shop plan's current period for the shop's owner and queue it after
    commit, once; False when already sent or the owner opted out of an optional kind. Call inside
    the event's transaction."""
    owner_id = Shop.objects.filter(pk=subscription.shop_id).values_list("owner_id", flat=True).first()
    if owner_id is None:
        return False
    if kind in OPTIONAL_KINDS and not email_notifications_wanted(user_id=owner_id):
        return False
    period = subscription.end_date.astimezone(UTC).isoformat()
    if not lifecycle_email_once(user_id=owner_id, kind=kind, object_id=subscription.pk, period=period):
        return False
    kwargs = {"subscription_id": str(subscription.pk), "kind": str(kind), "period": period}

    email_task_after_commit(
        send_shop_plan_email, kwargs=kwargs, what=f"{kind} of shop plan {subscription.pk}"
    )
    return True


def shop_plan_renewal_link(*, subscription: ShopSubscription, period_start: datetime) -> str:
    """The http(s) checkout of the still payable renewal of the period starting at
    `period_start`, else the frontend's page of the shop's plan."""
    links = ShopPlanPayment.objects.filter(
        subscription=subscription, period_start=period_start, payment__status__in=PAYABLE
    ).values_list("payment__metadata", flat=True)
    for metadata in links:
        url = checkout_web_url(metadata)
        if url:
            return url
    return f"{settings.FRONTEND_URL}/shops/{subscription.shop_id}/plan"


@shared_task(name="shops.send_plan_email", **EMAIL_TASK_OPTIONS)
def send_shop_plan_email(*, subscription_id: str, kind: str, period: str) -> None:
    """Render and send one shop plan lifecycle email to the shop's owner."""
    sub = ShopSubscription.objects.select_related("shop__owner", "plan").get(pk=subscription_id)
    end = datetime.fromisoformat(period)
    owner = sub.shop.owner
    context = {
        "name": owner.name,
        "shop_name": sub.shop.name,
        "plan": sub.plan.name,
        "billing_cycle": sub.billing_cycle,
        "amount": str(sub.plan.price_for(sub.billing_cycle)),
        "currency": sub.currency,
        "end_date": utc_text(end),
        "link": shop_plan_renewal_link(subscription=sub, period_start=end),
        "grace_end": utc_text(max(end, sub.past_due_since or end) + timedelta(days=SHOP_PLAN_GRACE_DAYS)),
    }
    email_send(template=PLAN_TEMPLATES[kind], to=[owner.email], context=context)
