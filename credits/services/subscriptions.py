"""Buying and renewing subscriptions through the payment path of credit packages.

A plan is bought like a package: `subscription_purchase_start` opens a `pending` Payment for the
plan with the provider's checkout; the provider's webhook completes it and
`payment_complete` activates (or extends) the subscription. The daily task calls
`subscriptions_renew`, which opens one renewal payment per subscription and period (a partial
unique index on Payment decides) RENEWAL_REMINDER_DAYS before the period ends, so that the
reminder email (`subscriptions_remind`, a later daily task) links a checkout the customer can
pay before the end; paying early extends the period from its end. A renewal whose checkout
cannot even be created is failed at once, which puts the subscription `past_due` (its grace
still counts from the period's end). Status changes themselves belong to
`accounts.services.subscription_transition`.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Subscription, SubscriptionPlan
from accounts.services import subscription_lock_live
from config.exceptions import ApplicationError, Conflict
from credits.emails import subscription_email_once
from credits.models import EmailSent, Payment
from credits.services.payments import (
    payment_check_provider,
    payment_checkout_fill,
    payment_renewal_checkout,
)

logger = logging.getLogger(__name__)


class AlreadySubscribed(Conflict):
    code = "already_subscribed"


def subscription_purchase_start(*, user, plan: SubscriptionPlan, provider: str | None) -> Payment:
    """Open a `pending` Payment for `plan` with the provider's checkout payload.

    Raises ApplicationError (400) for an inactive plan or an unusable provider, the provider's
    refusal (`provider_unavailable` 400, `provider_error` 502; nothing persists), and
    AlreadySubscribed (409) while the user has an active subscription that renews by itself (a
    past-due one, or one cancelled at period end, may be paid for: the payment extends it).

    The provider is asked outside any transaction, so no lock waits on the gateway. The check
    runs before it (a refused purchase costs no checkout) and again when the payment is
    inserted, under the user-row lock then the live subscription's, so it holds against a
    concurrent activation. A checkout made for a purchase refused by that second check is
    never shown to anyone and expires at the provider.
    """
    if not plan.is_active:
        raise ApplicationError(
            "Invalid input.", code="validation_error", fields={"plan": ["This plan is not available."]}
        )
    payment_check_provider(provider)
    with transaction.atomic():
        _refuse_while_renewing(user.pk)
    payment = Payment(
        user=user,
        plan=plan,
        credits=0,
        amount=plan.price,
        currency=plan.currency,
        provider=provider,
        status=Payment.Status.PENDING,
    )
    payment_checkout_fill(payment)
    with transaction.atomic():
        _refuse_while_renewing(user.pk)
        payment.save(force_insert=True)
    return payment


def _refuse_while_renewing(user_id) -> None:
    """AlreadySubscribed unless the user may pay for a plan now. Locks the user row, then the
    live subscription (call inside a transaction)."""
    live = subscription_lock_live(user_id)
    if live is not None and live.status == Subscription.Status.ACTIVE and live.auto_renew:
        raise AlreadySubscribed("You already have an active subscription that renews automatically.")


def subscriptions_due_for_renewal(*, now: datetime):
    """Active auto-renewing subscriptions whose period ends within RENEWAL_REMINDER_DAYS (or
    already ended): their renewal payment opens now."""
    ahead = timedelta(days=settings.RENEWAL_REMINDER_DAYS)
    return Subscription.objects.filter(
        status=Subscription.Status.ACTIVE, auto_renew=True, end_date__lte=now + ahead, plan__isnull=False
    )


def subscriptions_to_remind(*, now: datetime):
    """Active auto-renewing subscriptions whose period ends after `now` and within
    RENEWAL_REMINDER_DAYS: the ones the renewal reminder is about."""
    ahead = timedelta(days=settings.RENEWAL_REMINDER_DAYS)
    return Subscription.objects.filter(
        status=Subscription.Status.ACTIVE,
        auto_renew=True,
        plan__isnull=False,
        end_date__gt=now,
        end_date__lte=now + ahead,
    )


def subscription_remind(*, subscription_id, now: datetime | None = None) -> bool:
    """Queue the "renews in N days" email of the subscription's current period, once (the
    EmailSent key is the subscription and its end_date, so each period has its own), unless the
    user opted out of notification emails. Locks the user row, then the subscription, and
    re-checks that it is still due a reminder (a cancel or an early payment meanwhile wins).
    The email links the checkout of the renewal payment opened for that period, when it has an
    http(s) one. Returns whether an email was queued."""
    now = now or timezone.now()
    with transaction.atomic():
        owner = Subscription.objects.filter(pk=subscription_id).values_list("user_id", flat=True).first()
        if owner is None:
            return False
        live = subscription_lock_live(owner)
        if live is None or live.pk != subscription_id:
            return False
        if not subscriptions_to_remind(now=now).filter(pk=live.pk).exists():
            return False
        return subscription_email_once(subscription=live, kind=EmailSent.Kind.RENEWAL_UPCOMING)


def subscriptions_remind(*, now: datetime | None = None) -> dict:
    """Send the renewal reminder of every subscription ending within RENEWAL_REMINDER_DAYS (each
    in its own transaction; safe to run twice). Returns counts: `reminded`."""
    now = now or timezone.now()
    reminded = 0
    for pk in subscriptions_to_remind(now=now).order_by("pk").values_list("pk", flat=True):
        reminded += subscription_remind(subscription_id=pk, now=now)
    return {"reminded": reminded}


def subscription_renewal_start(*, subscription_id, now: datetime | None = None) -> Payment | None:
    """Open the renewal payment of the period that starts at the subscription's `end_date`, once,
    from RENEWAL_REMINDER_DAYS before that date.

    Locks the user row, then the subscription; returns None when there is nothing to do (not
    active, not renewing, not due, no completed payment to take the provider from, or this
    period's renewal already exists — the partial unique index on (subscription, period_start)
    decides under races). When the provider cannot create the checkout, the payment is kept as
    `failed` with the reason, and the subscription becomes `past_due` (3 days of grace).
    """
    now = now or timezone.now()
    with transaction.atomic():
        owner = Subscription.objects.filter(pk=subscription_id).values_list("user_id", flat=True).first()
        if owner is None:
            return None
        live = subscription_lock_live(owner)
        if (
            live is None
            or live.pk != subscription_id
            or not subscriptions_due_for_renewal(now=now).filter(pk=live.pk).exists()
        ):
            return None
        last = (
            Payment.objects.filter(subscription=live, status=Payment.Status.COMPLETED)
            .order_by("-completed_at")
            .values_list("provider", flat=True)
            .first()
        )
        if last is None:
            logger.warning("subscriptions: %s has no completed payment to renew through", live.pk)
            return None
        plan = live.plan
        try:
            with transaction.atomic():
                payment = Payment.objects.create(
                    user_id=live.user_id,
                    plan=plan,
                    subscription=live,
                    period_start=live.end_date,
                    credits=0,
                    amount=plan.price,
                    currency=plan.currency,
                    provider=last,
                    status=Payment.Status.PENDING,
                    metadata={"renewal": True},
                )
        except IntegrityError:
            return None
        return payment_renewal_checkout(payment=payment, what="subscriptions")


def subscriptions_renew(*, now: datetime | None = None) -> dict:
    """Open the renewal payment of every subscription due (ending within RENEWAL_REMINDER_DAYS;
    each in its own transaction; safe to run twice). Returns counts: `renewals` opened, `failed`
    among them (now past due)."""
    now = now or timezone.now()
    counts = {"renewals": 0, "failed": 0}
    for pk in subscriptions_due_for_renewal(now=now).order_by("pk").values_list("pk", flat=True):
        payment = subscription_renewal_start(subscription_id=pk, now=now)
        if payment is not None:
            counts["renewals"] += 1
            counts["failed"] += payment.status == Payment.Status.FAILED
    return counts
