"""`make run`'s demo data gives every admin page something to show, and loading it twice adds nothing."""

import io

import pytest
from django.core.management import call_command

from credits.models import CreditTransaction, Payment
from credits.selectors import credits_audit
from jobs.models import Job
from shops.models import Conversation, FormSubmission, Message, StockHistory

pytestmark = pytest.mark.django_db


def _counts():
    return (
        FormSubmission.objects.count(),
        Payment.objects.count(),
        Conversation.objects.count(),
        Message.objects.count(),
        Job.objects.count(),
        CreditTransaction.objects.count(),
        StockHistory.objects.count(),
    )


def test_demo_data_covers_orders_payments_chats_and_a_failed_job_and_is_idempotent():
    call_command("seed_demo", stdout=io.StringIO())
    first = _counts()

    call_command("seed_demo", stdout=io.StringIO())

    assert _counts() == first
    assert set(FormSubmission.objects.values_list("status", flat=True)) >= {"new", "confirmed", "cancelled"}
    assert set(Payment.objects.values_list("status", flat=True)) >= {"completed", "failed", "pending"}
    assert Conversation.objects.count() >= 2
    assert Message.objects.filter(sender=Message.Sender.BOT).exists()  # the keyword auto-reply
    assert Job.objects.filter(status="failed").exists() and Job.objects.filter(status="completed").exists()
    assert StockHistory.objects.filter(reason="cancellation").exists()  # the cancelled order restocked
    assert credits_audit() == []  # every demo balance equals its ledger
