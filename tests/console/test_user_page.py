"""What support reads when answering a customer: the user page's timeline, why a job failed,
preferences and payment metadata as key/value tables rather than raw JSON."""

import pytest
from django.urls import reverse

from credits.services import credits_grant
from tests.credits.factories import PaymentFactory
from tests.factories import UserFactory
from tests.jobs.factories import JobFactory

pytestmark = pytest.mark.django_db


def test_the_user_page_has_a_timeline_of_payments_jobs_and_ledger_newest_first(admin_client):
    customer = UserFactory(email="customer@example.com")
    payment = PaymentFactory(user=customer, metadata={"slip": "A-1"})
    job = JobFactory(user=customer, status="failed", error="input file could not be decoded")
    credits_grant(user=customer, amount=5, idempotency_key="welcome", reason="welcome bonus")
    stranger_job = JobFactory(user=UserFactory(), status="failed", error="someone else's")

    page = admin_client.get(reverse("admin:accounts_user_change", args=[customer.pk])).content.decode()

    timeline = page[page.index('id="user-timeline"') :]
    timeline = timeline[: timeline.index("</table>")]
    assert reverse("admin:credits_payment_change", args=[payment.pk]) in timeline
    assert reverse("admin:jobs_job_change", args=[job.pk]) in timeline
    assert "input file could not be decoded" in timeline
    assert "+5 credits (balance 5) — welcome bonus" in timeline
    assert stranger_job.external_id not in timeline
    # newest first: the grant came last
    assert timeline.index("timeline-credits") < timeline.index("timeline-job")


def test_a_failed_jobs_page_says_why_it_failed(admin_client):
    job = JobFactory(status="failed", error="mesh has no faces")

    page = admin_client.get(reverse("admin:jobs_job_change", args=[job.pk])).content.decode()

    assert '<strong class="job-error"' in page and "mesh has no faces" in page


def test_preferences_and_payment_metadata_read_as_key_value_tables(admin_client):
    customer = UserFactory()
    payment = PaymentFactory(user=customer, metadata={"slip_reference": "<b>X-9</b>", "checked": True})

    user_page = admin_client.get(reverse("admin:accounts_user_change", args=[customer.pk])).content.decode()
    payment_url = reverse("admin:credits_payment_change", args=[payment.pk])
    payment_page = admin_client.get(payment_url).content.decode()

    assert '<table class="key-value">' in user_page and "video defaults" in user_page
    row = '<th scope="row" style="width:30%">slip reference</th><td>&lt;b&gt;X-9&lt;/b&gt;</td>'
    assert row in payment_page
    assert "<td>yes</td>" in payment_page
    assert '{"slip_reference"' not in payment_page


def test_the_webhook_log_filters_by_provider(admin_client):
    from credits.models import WebhookLog

    common = {"source": "payments", "outcome": WebhookLog.Outcome.values[0], "status_code": 200}
    stripe = WebhookLog.objects.create(provider="stripe", event_id="evt_stripe_1", **common)
    WebhookLog.objects.create(provider="razorpay", event_id="evt_razorpay_1", **common)

    response = admin_client.get(reverse("admin:credits_webhooklog_changelist"), {"provider": "stripe"})

    assert [row.pk for row in response.context["cl"].result_list] == [stripe.pk]
    assert 'data-filter-title="provider"' in response.content.decode()
