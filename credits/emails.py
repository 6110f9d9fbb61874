"""Lifecycle emails of billing, each sent once per event.

`lifecycle_email_once` inserts an EmailSent row in the transaction of the event (a savepoint,
so a duplicate leaves the caller's transaction usable); the unique constraint on (user, kind,
object, period) makes a repeated or concurrent trigger a no-op: the second insert waits for the
first transaction and then conflicts. Only the winner queues the Celery task, after commit.

Payment received is transactional (it carries the receipt / tax invoice): it is sent whatever
the user's notification preferences say.

Subscriptions (`subscription_email_once`), each keyed on the subscription and its period (the
`end_date` the email is about, ISO), so every renewal cycle has its own and a repeat is a no-op:

- `renewal_upcoming`: the daily `credits.remind_renewals` (RENEWAL_REMINDER_DAYS before the
  end), linking the checkout of the renewal payment the daily renewal opened that many days early
  (`credits.services.subscriptions`), else the frontend's subscription page. The user may opt
  out (`notifications.email`).
- `renewal_failed`: the subscription went `past_due`; always sent (it asks for money the user
  owes to keep the plan), linking a renewal still payable, else the subscription page.
- `subscription_expired`: it ended unpaid; the user may opt out.
- `subscription_cancelled`: the user cancelled ("your subscription ends on …"); always sent.
  The final move to `cancelled` at the period end uses the same key, so it mails nothing more;
  staff cancelling outright (no cancel before) mails once ("has ended").

accounts cannot import credits: `accounts.events.subscription_changed`, sent inside the
transition's transaction, reaches `on_subscription_changed` (connected in CreditsConfig.ready).
"""

from datetime import UTC, datetime, timedelta

from celery import shared_task
from django.conf import settings
from django.db import IntegrityError, transaction

from accounts.emails import EMAIL_TASK_OPTIONS, email_send, email_task_after_commit, utc_text
from accounts.events import CANCEL_REQUESTED
from accounts.models import SUBSCRIPTION_GRACE_DAYS, Subscription
from accounts.selectors import email_notifications_wanted
from credits.models import EmailSent, Payment, Receipt


def lifecycle_email_once(*, user_id, kind: str, object_id, period: str = "") -> bool:
    """Record that `kind` about `object_id` (for `period`) is sent to the user; False when it
    already was (call inside the event's transaction)."""
    try:
        with transaction.atomic():
            EmailSent.objects.create(user_id=user_id, kind=kind, object_id=str(object_id), period=period)
    except IntegrityError:
        return False
    return True


def payment_received_email(*, payment: Payment) -> None:
    """Queue the payment-received email (with the receipt PDF) of a payment just completed, once."""
    if not lifecycle_email_once(
        user_id=payment.user_id, kind=EmailSent.Kind.PAYMENT_RECEIVED, object_id=payment.pk
    ):
        return
    payment_id = str(payment.pk)

    email_task_after_commit(
        send_payment_received,
        kwargs={"payment_id": payment_id},
        what=f"payment_received of payment {payment_id}",
    )


@shared_task(
    name="credits.send_payment_received",
    queue="default",
    time_limit=120,
    soft_time_limit=110,
    autoretry_for=(OSError,),
    retry_backoff=30,
    retry_backoff_max=15 * 60,
    max_retries=8,
    ignore_result=True,
)
def send_payment_received(*, payment_id: str) -> None:
    """Render the receipt PDF and send it with the payment confirmation."""
    from credits.services.receipts import receipt_pdf  # the services import this module

    payment = Payment.objects.select_related("user", "plan", "package").get(pk=payment_id)
    receipt = Receipt.objects.filter(payment=payment).first()
    attachments = []
    if receipt is not None:
        attachments.append((f"{receipt.number}.pdf", receipt_pdf(receipt=receipt), "application/pdf"))
    email_send(
        template="payment_received",
        to=[payment.user.email],
        context={
            "name": payment.user.name,
            "what": payment.description,
            "amount": str(payment.amount),
            "currency": payment.currency,
            "payment_id": str(payment.pk),
            "receipt_number": receipt.number if receipt is not None else "",
        },
        attachments=attachments,
    )


# -- subscriptions -------------------------------------------------------------------------------

Kind = EmailSent.Kind
# What a user may turn off with `notifications.email`; the others are transactional.
OPTIONAL_KINDS = frozenset({Kind.RENEWAL_UPCOMING, Kind.SUBSCRIPTION_EXPIRED})
# A checkout a customer can still pay (a failed one, e.g. an expired Stripe session, cannot).
PAYABLE = (Payment.Status.PENDING, Payment.Status.PROCESSING)


def subscription_email_once(*, subscription: Subscription, kind: str, event: str = "") -> bool:
    """Record `kind` about `subscription`'s current period and queue it after commit, once;
    False when it was already sent, or the user opted out of an optional kind. Call inside the
    event's transaction (a rollback leaves no record and sends nothing). `event` (the
    `subscription_changed` event, if any) travels with the task, so the email says what
    happened then, not what the subscription became by the time the worker renders it."""
    if kind in OPTIONAL_KINDS and not email_notifications_wanted(user_id=subscription.user_id):
        return False
    period = subscription.end_date.astimezone(UTC).isoformat()
    if not lifecycle_email_once(
        user_id=subscription.user_id, kind=kind, object_id=subscription.pk, period=period
    ):
        return False
    kwargs = {"subscription_id": str(subscription.pk), "kind": str(kind), "period": period, "event": event}

    email_task_after_commit(
        send_subscription_email, kwargs=kwargs, what=f"{kind} of subscription {subscription.pk}"
    )
    return True


EVENT_KINDS = {
    Subscription.Status.PAST_DUE: Kind.RENEWAL_FAILED,
    Subscription.Status.EXPIRED: Kind.SUBSCRIPTION_EXPIRED,
    Subscription.Status.CANCELLED: Kind.SUBSCRIPTION_CANCELLED,
    CANCEL_REQUESTED: Kind.SUBSCRIPTION_CANCELLED,
}


def on_subscription_changed(sender, *, subscription: Subscription, event: str, **kwargs) -> None:
    """`accounts.events.subscription_changed` receiver: the email the event calls for, once."""
    kind = EVENT_KINDS.get(event)
    if kind is not None:
        subscription_email_once(subscription=subscription, kind=kind, event=str(event))


def renewal_link(*, subscription: Subscription, period_start: datetime) -> str:
    """Where a renewal email sends the customer: the http(s) checkout of the still payable
    renewal payment of the period starting at `period_start` (a Stripe Checkout page), else the
    frontend's subscription page (a QR, a deeplink or a bank transfer is shown there)."""
    checkouts = Payment.objects.filter(
        subscription=subscription, period_start=period_start, status__in=PAYABLE
    ).values_list("metadata", flat=True)
    for metadata in checkouts:
        url = checkout_web_url(metadata)
        if url:
            return url
    return f"{settings.FRONTEND_URL}/account/subscription"


def checkout_web_url(metadata) -> str:
    """The http(s) page of a payment's checkout (Stripe's), from its metadata; "" for a QR, a
    deeplink, a Razorpay order or a bank transfer (the frontend shows those)."""
    checkout = (metadata or {}).get("checkout")
    url = checkout.get("url") if isinstance(checkout, dict) else None
    return url if isinstance(url, str) and url.startswith(("https://", "http://")) else ""


@shared_task(name="credits.send_subscription_email", **EMAIL_TASK_OPTIONS)
def send_subscription_email(*, subscription_id: str, kind: str, period: str, event: str = "") -> None:
    """Render and send one subscription lifecycle email (`kind`, about the period ending at
    `period`, caused by `event`); the renewal link is the one payable now."""
    sub = Subscription.objects.select_related("user", "plan").get(pk=subscription_id)
    end = datetime.fromisoformat(period)
    context = {
        "name": sub.user.name,
        "plan": sub.plan.name if sub.plan_id else sub.tier,
        "amount": str(sub.amount),
        "currency": sub.currency,
        "end_date": utc_text(end),
        # cancelled outright (staff), not "ends on": the plan is gone already
        "ended": event in (Subscription.Status.CANCELLED, Subscription.Status.EXPIRED),
        "link": renewal_link(subscription=sub, period_start=end),
        "grace_end": utc_text(max(end, sub.past_due_since or end) + timedelta(days=SUBSCRIPTION_GRACE_DAYS)),
    }
    email_send(template=kind, to=[sub.user.email], context=context)
