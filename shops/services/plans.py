"""Shop plans: bought by the shop's owner through the payment path of credit packages, renewed
like user subscriptions, and the limits they set.

Buying: `shop_plan_purchase_start` opens a `pending` credits Payment with purpose `shop_plan`
(and a ShopPlanPayment saying what it buys); the provider's signed webhook completes it, and
`credits.signals.payment_completed` reaches `shop_plan_payment_completed`, which starts or
extends the shop's subscription in the payment's transaction. Renewing: the daily task
(`shop_plans_renew`) opens one renewal payment per subscription and period RENEWAL_REMINDER_DAYS
before the period ends, and `shop_plans_remind` emails the owner its checkout; a failed one puts
the subscription `past_due` (SHOP_PLAN_GRACE_DAYS of grace, counted from the period's end when
that is still ahead); `shop_plans_expire` ends those past their grace, and non-renewing ones at
their end, back to the free plan. The owner is emailed each of these once per period
(shops.notifications: renewal upcoming, renewal failed, expired).

Limits: the shop's plan is the ShopPlan named by `Shop.plan` (which the subscription keeps in
step; staff may also set it by hand), else `free`; a null limit is unlimited. Each check locks
the shop row (FOR NO KEY UPDATE: inserts referring to the shop still proceed) and counts under
the lock, so concurrent creations at the limit serialise and never pass it. A downgrade keeps
everything that exists; only new rows over the limit are refused (403 `plan_limit`).

Lock order: the payment row (credits), then the shop row, then the subscription row.
"""

import logging
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import add_months
from config.exceptions import ApplicationError, Conflict, Forbidden
from credits.models import EmailSent, Payment
from credits.services.payments import (
    payment_check_provider,
    payment_checkout_fill,
    payment_renewal_checkout,
)
from shops.models import (
    FREE_SHOP_PLAN,
    SHOP_PLAN_GRACE_DAYS,
    Form,
    Item,
    Message,
    Shop,
    ShopPlan,
    ShopPlanPayment,
    ShopSubscription,
    TeamMember,
)
from shops.notifications import shop_plan_email_once
from shops.states import SHOP_SUBSCRIPTION_MACHINE

logger = logging.getLogger(__name__)

PURPOSE = "shop_plan"
# The error recorded on an automatic reply the outbound limit refused (it is stored, never sent).
PLAN_LIMIT_ERROR = "plan_limit: the shop's plan allows no more outbound messages this month"
OUTBOUND_SENDERS = (Message.Sender.STAFF, Message.Sender.BOT, Message.Sender.AI)
Status = ShopSubscription.Status


class PlanLimit(Forbidden):
    code = "plan_limit"


class PlanAlreadyRenewing(Conflict):
    code = "already_subscribed"


# -- reading the plan and its usage --------------------------------------------------------------


def shop_plan_effective(shop: Shop) -> ShopPlan:
    """The plan whose limits apply to `shop`: the one `Shop.plan` names, else `free`, else (no
    plan rows at all) an unsaved plan without limits."""
    plans = {p.code: p for p in ShopPlan.objects.filter(code__in=[shop.plan, FREE_SHOP_PLAN])}
    return plans.get(shop.plan) or plans.get(FREE_SHOP_PLAN) or ShopPlan(code=FREE_SHOP_PLAN, name="Free")


def month_start(now: datetime) -> datetime:
    now = now.astimezone(UTC)
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def outbound_messages_this_month(*, shop_id, now: datetime | None = None) -> int:
    """Outbound (staff, bot, ai) messages of the shop since the start of this calendar month
    (UTC), not counting the automatic replies the limit refused."""
    start = month_start(now or timezone.now())
    return (
        Message.objects.filter(
            conversation__shop_id=shop_id,
            direction=Message.Direction.OUTBOUND,
            sender__in=OUTBOUND_SENDERS,
            created_at__gte=start,
        )
        .exclude(error=PLAN_LIMIT_ERROR)
        .count()
    )


USAGE = {
    "max_items": lambda shop_id: Item.objects.filter(shop_id=shop_id).count(),
    "max_members": lambda shop_id: TeamMember.objects.filter(shop_id=shop_id).count(),
    "max_forms": lambda shop_id: Form.objects.filter(shop_id=shop_id).count(),
    "max_outbound_messages_per_month": lambda shop_id: outbound_messages_this_month(shop_id=shop_id),
}
USAGE_NAMES = {
    "max_items": "items",
    "max_members": "members",
    "max_forms": "forms",
    "max_outbound_messages_per_month": "outbound_messages_this_month",
}


def shop_plan_usage(shop: Shop) -> dict:
    return {USAGE_NAMES[limit]: count(shop.pk) for limit, count in USAGE.items()}


def shop_subscription_live(shop_id) -> ShopSubscription | None:
    return (
        ShopSubscription.objects.select_related("plan")
        .filter(shop_id=shop_id, status__in=ShopSubscription.LIVE_STATUSES)
        .first()
    )


def shop_plan_summary(shop: Shop) -> dict:
    """What `GET /api/shops/<id>` shows under `plan`."""
    plan = shop_plan_effective(shop)
    live = shop_subscription_live(shop.pk)
    return {
        "code": plan.code,
        "name": plan.name,
        "status": live.status if live is not None else Status.ACTIVE,
        "billing_cycle": live.billing_cycle if live is not None else None,
        "current_period_end": live.end_date if live is not None else None,
        "auto_renew": live.auto_renew if live is not None else False,
        "limits": plan.limits(),
        "usage": shop_plan_usage(shop),
    }


# -- enforcing the limits ------------------------------------------------------------------------


def _shop_lock(shop_id) -> Shop | None:
    return Shop.objects.select_for_update(no_key=True).filter(pk=shop_id).first()


@transaction.atomic
def shop_plan_limit_check(*, shop_id, limit: str, now: datetime | None = None) -> None:
    """Raise PlanLimit (403 `plan_limit`) unless the shop may add one more of what `limit`
    counts (`max_items`, `max_members`, `max_forms`, `max_outbound_messages_per_month`).

    Locks the shop row until the caller's transaction ends, then counts: call it inside the
    transaction that inserts the row, so concurrent inserts at the limit wait for each other and
    the count never passes the limit. An unlimited plan takes no lock."""
    shop = Shop.objects.filter(pk=shop_id).only("plan").first()
    if shop is None:
        return
    if shop_plan_effective(shop).limits()[limit] is None:
        return
    shop = _shop_lock(shop_id)
    plan = shop_plan_effective(shop)
    allowed = plan.limits()[limit]
    if allowed is None:
        return
    used = (
        outbound_messages_this_month(shop_id=shop_id, now=now)
        if limit == "max_outbound_messages_per_month"
        else USAGE[limit](shop_id)
    )
    if used >= allowed:
        what = USAGE_NAMES[limit].replace("_", " ")
        raise PlanLimit(f"The shop's {plan.name} plan allows {allowed} {what}; upgrade the plan to add more.")


# -- the subscription's state machine ------------------------------------------------------------


def _mirror_on_shop(*, shop_id, plan_code: str, plan_status: str, price, billing_cycle: str, now) -> None:
    """Keep the shop's plan fields (read by the admin list and platform MRR) in step."""
    Shop.objects.filter(pk=shop_id).update(
        plan=plan_code, plan_status=plan_status, plan_price=price, billing_cycle=billing_cycle, updated_at=now
    )


@transaction.atomic
def shop_subscription_transition(
    *, subscription: ShopSubscription, to: str, now: datetime | None = None
) -> ShopSubscription:
    """The only writer of `ShopSubscription.status` (a trigger refuses every other write). Locks
    the shop row, then the subscription row, checks the move against
    SHOP_SUBSCRIPTION_TRANSITIONS (shops/states.py; InvalidTransition, 409) and applies its
    effect on the shop: `active` gives the plan, `past_due` keeps it for the grace period,
    `expired` drops the shop to `free` (everything that exists stays; new rows over the free
    limits are refused). A move to `past_due` starts the grace at the period's end when that is
    still ahead (a renewal opened early failed early). `past_due` emails the owner that the
    renewal failed, `expired` that the plan ended (once per period, after commit). Moving to the
    status it already has returns it unchanged."""
    now = now or timezone.now()
    _shop_lock(subscription.shop_id)
    sub = ShopSubscription.objects.select_for_update().select_related("plan").get(pk=subscription.pk)
    if sub.status == to:
        return sub
    SHOP_SUBSCRIPTION_MACHINE.check(sub.status, to)
    SHOP_SUBSCRIPTION_MACHINE.authorise(sub.pk)
    sub.status = to
    sub.past_due_since = max(now, sub.end_date) if to == Status.PAST_DUE else None
    if to == Status.EXPIRED:
        sub.auto_renew = False
        _mirror_on_shop(
            shop_id=sub.shop_id,
            plan_code=FREE_SHOP_PLAN,
            plan_status=Shop.PlanStatus.ACTIVE,
            price=0,
            billing_cycle=Shop.BillingCycle.MONTHLY,
            now=now,
        )
    else:
        _mirror_on_shop(
            shop_id=sub.shop_id,
            plan_code=sub.plan.code,
            plan_status=Shop.PlanStatus.PAST_DUE if to == Status.PAST_DUE else Shop.PlanStatus.ACTIVE,
            price=sub.amount,
            billing_cycle=sub.billing_cycle,
            now=now,
        )
    sub.save(update_fields=["status", "past_due_since", "auto_renew", "updated_at"])
    if to in EVENT_KINDS:
        shop_plan_email_once(subscription=sub, kind=EVENT_KINDS[to])
    return sub


EVENT_KINDS = {
    Status.PAST_DUE: EmailSent.Kind.RENEWAL_FAILED,
    Status.EXPIRED: EmailSent.Kind.SUBSCRIPTION_EXPIRED,
}


def _lock_live(shop_id) -> ShopSubscription | None:
    _shop_lock(shop_id)
    return (
        ShopSubscription.objects.select_for_update(of=("self",))
        .select_related("plan")
        .filter(shop_id=shop_id, status__in=ShopSubscription.LIVE_STATUSES)
        .first()
    )


def _lock_live_by_id(subscription_id) -> ShopSubscription | None:
    """`_lock_live` of the subscription's shop, if that subscription is still the live one."""
    shop_id = ShopSubscription.objects.filter(pk=subscription_id).values_list("shop_id", flat=True).first()
    if shop_id is None:
        return None
    live = _lock_live(shop_id)
    return live if live is not None and live.pk == subscription_id else None


def _period_end(start: datetime, billing_cycle: str) -> datetime:
    return add_months(start, 12 if billing_cycle == Shop.BillingCycle.YEARLY else 1)


@transaction.atomic
def shop_plan_activate(
    *, link: ShopPlanPayment, provider: str, now: datetime | None = None
) -> ShopSubscription:
    """A payment for a shop plan succeeded: start the shop's subscription, or extend the live one
    by a period (from its end, or from now when that end is past the grace period), with the
    paid plan, cycle and price; it renews again and is `active`. Locks the shop row, then the
    live subscription. The caller (the payment's completion) makes this happen once per payment."""
    now = now or timezone.now()
    live = _lock_live(link.shop_id)
    amount = link.payment.amount
    if live is None:
        live = ShopSubscription(shop_id=link.shop_id, status=Status.ACTIVE, start_date=now)
        anchor = now
    else:
        grace = timedelta(days=SHOP_PLAN_GRACE_DAYS)
        anchor = live.end_date if live.end_date + grace > now else now
    live.plan = link.plan
    live.billing_cycle = link.billing_cycle
    live.amount = amount
    live.currency = link.payment.currency
    live.provider = provider
    live.end_date = _period_end(anchor, link.billing_cycle)
    live.auto_renew = True
    live.save()
    ShopPlanPayment.objects.filter(pk=link.pk, subscription__isnull=True).update(subscription=live)
    if live.status == Status.PAST_DUE:
        return shop_subscription_transition(subscription=live, to=Status.ACTIVE, now=now)
    _mirror_on_shop(
        shop_id=live.shop_id,
        plan_code=live.plan.code,
        plan_status=Shop.PlanStatus.ACTIVE,
        price=live.amount,
        billing_cycle=live.billing_cycle,
        now=now,
    )
    return live


def shop_plan_payment_completed(sender, payment: Payment, now: datetime, **kwargs) -> None:
    """`credits.signals.payment_completed` receiver: activate what a shop-plan payment bought."""
    if payment.purpose != PURPOSE:
        return
    link = ShopPlanPayment.objects.select_related("plan", "payment").filter(payment=payment).first()
    if link is None:  # the shop was deleted meanwhile: the money is in, there is nothing to activate
        logger.warning("shop plans: payment %s completed for a shop that no longer exists", payment.pk)
        return
    shop_plan_activate(link=link, provider=payment.provider, now=now)


def shop_plan_payment_failed(sender, payment: Payment, now: datetime, **kwargs) -> None:
    """`credits.signals.payment_failed` receiver: a failed renewal payment puts an `active`
    subscription still at that period `past_due` (grace starts now); anything else (a failed
    first purchase, a late notice for an older period) changes nothing."""
    if payment.purpose != PURPOSE:
        return
    link = ShopPlanPayment.objects.filter(payment=payment).first()
    if link is None or link.subscription_id is None or link.period_start is None:
        return
    live = _lock_live(link.shop_id)
    if live is None or live.pk != link.subscription_id or live.status != Status.ACTIVE:
        return
    if live.end_date != link.period_start:
        return
    shop_subscription_transition(subscription=live, to=Status.PAST_DUE, now=now)


# -- buying --------------------------------------------------------------------------------------


def _refuse_while_renewing(shop_id) -> None:
    live = _lock_live(shop_id)
    if live is not None and live.status == Status.ACTIVE and live.auto_renew:
        raise PlanAlreadyRenewing(
            "The shop has an active plan that renews automatically; it can be changed when it ends."
        )


def shop_plan_purchase_start(*, shop: Shop, user, plan: ShopPlan, billing_cycle: str, provider) -> Payment:
    """Open a `pending` Payment (purpose `shop_plan`) for `plan` on `billing_cycle`, with the
    provider's checkout, paid by `user` (the shop's owner; the view checks the role).

    Raises ApplicationError (400) for an inactive or free plan or an unusable provider, the
    provider's refusal (`provider_unavailable` 400, `provider_error` 502; nothing persists), and
    PlanAlreadyRenewing (409 `already_subscribed`) while the shop has an active plan that renews
    by itself (a past-due one may be paid for: the payment extends it). The check runs before
    the provider is asked and again under the shop-row lock when the payment is inserted."""
    price = plan.price_for(billing_cycle)
    if not plan.is_active or plan.code == FREE_SHOP_PLAN or price <= 0:
        raise ApplicationError(
            "Invalid input.", code="validation_error", fields={"plan": ["This plan cannot be bought."]}
        )
    payment_check_provider(provider)
    with transaction.atomic():
        _refuse_while_renewing(shop.pk)
    payment = Payment(
        user=user,
        purpose=PURPOSE,
        credits=0,
        amount=price,
        currency=plan.currency,
        provider=provider,
        status=Payment.Status.PENDING,
        metadata={
            "title": f"{plan.name} shop plan ({billing_cycle}) for {shop.name}"[:200],
            "shop_id": str(shop.pk),
        },
    )
    payment_checkout_fill(payment)
    with transaction.atomic():
        _refuse_while_renewing(shop.pk)
        payment.save(force_insert=True)
        ShopPlanPayment.objects.create(payment=payment, shop=shop, plan=plan, billing_cycle=billing_cycle)
    return payment


# -- renewing and expiring -----------------------------------------------------------------------


def shop_subscriptions_due_for_renewal(*, now: datetime):
    """Active auto-renewing shop plans whose period ends within RENEWAL_REMINDER_DAYS (or ended)."""
    ahead = timedelta(days=settings.RENEWAL_REMINDER_DAYS)
    return ShopSubscription.objects.filter(status=Status.ACTIVE, auto_renew=True, end_date__lte=now + ahead)


def shop_subscriptions_to_remind(*, now: datetime):
    """Active auto-renewing shop plans whose period ends after `now` and within
    RENEWAL_REMINDER_DAYS."""
    ahead = timedelta(days=settings.RENEWAL_REMINDER_DAYS)
    return ShopSubscription.objects.filter(
        status=Status.ACTIVE, auto_renew=True, end_date__gt=now, end_date__lte=now + ahead
    )


def shop_plan_remind(*, subscription_id, now: datetime | None = None) -> bool:
    """Email the shop's owner that the plan renews at its end, with the checkout of the renewal
    payment opened for it, once per period (unless the owner opted out). Locks the shop row, then
    the subscription, and re-checks it is still due. Returns whether an email was queued."""
    now = now or timezone.now()
    with transaction.atomic():
        live = _lock_live_by_id(subscription_id)
        if live is None or not shop_subscriptions_to_remind(now=now).filter(pk=live.pk).exists():
            return False
        return shop_plan_email_once(subscription=live, kind=EmailSent.Kind.RENEWAL_UPCOMING)


def shop_plans_remind(*, now: datetime | None = None) -> int:
    """Remind the owner of every shop plan ending within RENEWAL_REMINDER_DAYS (each in its own
    transaction; safe to run twice). Returns how many emails were queued."""
    now = now or timezone.now()
    return sum(
        shop_plan_remind(subscription_id=pk, now=now)
        for pk in shop_subscriptions_to_remind(now=now).order_by("pk").values_list("pk", flat=True)
    )


def shop_plan_renewal_start(*, subscription_id, now: datetime | None = None) -> Payment | None:
    """Open the renewal payment of the period that starts at the subscription's `end_date`, once,
    from RENEWAL_REMINDER_DAYS before that date (the partial unique index on ShopPlanPayment
    decides under races), through the provider the subscription was last paid with. Returns
    None when there is nothing to do. A checkout the provider refuses fails the payment at once,
    which makes the subscription `past_due`."""
    now = now or timezone.now()
    with transaction.atomic():
        live = _lock_live_by_id(subscription_id)
        if live is None or not shop_subscriptions_due_for_renewal(now=now).filter(pk=live.pk).exists():
            return None
        shop = Shop.objects.select_related("owner").get(pk=live.shop_id)
        plan = live.plan
        try:
            with transaction.atomic():
                payment = Payment.objects.create(
                    user=shop.owner,
                    purpose=PURPOSE,
                    credits=0,
                    amount=plan.price_for(live.billing_cycle),
                    currency=plan.currency,
                    provider=live.provider,
                    status=Payment.Status.PENDING,
                    metadata={
                        "renewal": True,
                        "title": f"{plan.name} shop plan ({live.billing_cycle}) for {shop.name}"[:200],
                        "shop_id": str(shop.pk),
                    },
                )
                ShopPlanPayment.objects.create(
                    payment=payment,
                    shop=shop,
                    plan=plan,
                    billing_cycle=live.billing_cycle,
                    subscription=live,
                    period_start=live.end_date,
                )
        except IntegrityError:
            return None
        return payment_renewal_checkout(payment=payment, what="shop plans")


def shop_plans_renew(*, now: datetime | None = None) -> dict:
    """Open the renewal payment of every shop plan due (each in its own transaction; safe to run
    twice). Returns counts: `renewals` opened, `failed` among them (now past due)."""
    now = now or timezone.now()
    counts = {"renewals": 0, "failed": 0}
    for pk in shop_subscriptions_due_for_renewal(now=now).order_by("pk").values_list("pk", flat=True):
        payment = shop_plan_renewal_start(subscription_id=pk, now=now)
        if payment is not None:
            counts["renewals"] += 1
            counts["failed"] += payment.status == Payment.Status.FAILED
    return counts


def shop_subscriptions_due_to_end(*, now: datetime):
    """Live shop plans the daily task must end: not renewing at their end, past due for longer
    than the grace period, or renewing but unpaid that long after their end."""
    grace = timedelta(days=SHOP_PLAN_GRACE_DAYS)
    return ShopSubscription.objects.filter(status__in=ShopSubscription.LIVE_STATUSES).filter(
        Q(status=Status.ACTIVE, auto_renew=False, end_date__lte=now)
        | Q(status=Status.ACTIVE, end_date__lte=now - grace)
        | Q(status=Status.PAST_DUE, past_due_since__lte=now - grace)
    )


def shop_plans_expire(*, now: datetime | None = None) -> int:
    """Expire every shop plan `shop_subscriptions_due_to_end` finds (each in its own transaction,
    re-checked under its lock, so a payment that lands meanwhile wins); the shop drops to free.
    Returns how many ended."""
    now = now or timezone.now()
    ended = 0
    for pk in shop_subscriptions_due_to_end(now=now).order_by("pk").values_list("pk", flat=True):
        with transaction.atomic():
            sub = ShopSubscription.objects.get(pk=pk)
            _lock_live(sub.shop_id)
            if not shop_subscriptions_due_to_end(now=now).filter(pk=pk).exists():
                continue
            shop_subscription_transition(subscription=sub, to=Status.EXPIRED, now=now)
            ended += 1
    return ended


@transaction.atomic
def shop_plan_auto_renew_set(*, shop: Shop, auto_renew: bool) -> ShopSubscription | None:
    """Turn renewal of the shop's live plan on or off (off: it expires to free at its end)."""
    live = _lock_live(shop.pk)
    if live is not None and live.auto_renew != auto_renew:
        live.auto_renew = auto_renew
        live.save(update_fields=["auto_renew", "updated_at"])
    return live
