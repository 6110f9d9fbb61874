"""Lifecycle emails of billing, each sent once per event.

`lifecycle_email_once` inserts an EmailSent row in the transaction of the event (a savepoint,
so a duplicate leaves the caller's transaction usable); the unique constraint on (user, kind,
object, period) makes a repeated or concurrent trigger a no-op: the second insert waits for the
first transaction and then conflicts. Only the winner queues the Celery task, after commit.

Payment received is transactional (it carries the receipt / tax invoice): it is sent whatever
the user's notification preferences say.
"""

import logging

from celery import shared_task
from django.db import IntegrityError, transaction

from accounts.emails import email_send
from credits.models import EmailSent, Payment, Receipt

logger = logging.getLogger(__name__)


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

    def enqueue():
        try:
            send_payment_received.apply_async(kwargs={"payment_id": payment_id})
        except Exception:
            logger.exception("could not queue the payment_received email of %s", payment_id)

    transaction.on_commit(enqueue)


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
    what = payment.plan.name if payment.plan_id else f"{payment.package.name} ({payment.credits} credits)"
    email_send(
        template="payment_received",
        to=[payment.user.email],
        context={
            "name": payment.user.name,
            "what": what,
            "amount": str(payment.amount),
            "currency": payment.currency,
            "payment_id": str(payment.pk),
            "receipt_number": receipt.number if receipt is not None else "",
        },
        attachments=attachments,
    )
