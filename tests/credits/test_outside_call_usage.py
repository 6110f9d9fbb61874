"""Every call to an outside service writes one ApiUsageLog row (config.outside_calls): the payment
providers through their SDKs (remote HTTP faked as in test_providers), email, and the helper
itself (failures re-raised, their status recorded)."""

from decimal import Decimal

import pytest
import stripe
from django.core import mail

from accounts.emails import email_send
from config.outside_calls import outside_call
from jobs.models import ApiUsageLog
from tests.conftest import assert_error
from tests.credits.test_providers import (  # noqa: F401  (_keys, remote: fixtures)
    RAZORPAY_ORDERS,
    STRIPE_SESSIONS,
    _keys,
    buy,
    remote,
    stripe_session,
)
from tests.jobs.factories import JobFactory

pytestmark = pytest.mark.django_db


def test_one_stripe_checkout_writes_one_usage_row(auth_client, seeded_package, remote):  # noqa: F811
    remote.post(STRIPE_SESSIONS, json=stripe_session())
    assert buy(auth_client, seeded_package("Popular Pack"), "stripe").status_code == 201
    (row,) = ApiUsageLog.objects.filter(provider="stripe")
    assert (row.provider, row.endpoint, row.status_code, row.succeeded) == (
        "stripe",
        "checkout.sessions.create",
        200,
        True,
    )
    assert row.units == 1 and row.cost is None and row.duration_ms >= 0 and row.job_id is None


def test_a_refused_stripe_call_is_recorded_with_its_status(auth_client, seeded_package, remote):  # noqa: F811
    remote.post(
        STRIPE_SESSIONS, status=400, json={"error": {"type": "invalid_request_error", "message": "No."}}
    )
    assert_error(buy(auth_client, seeded_package("Popular Pack"), "stripe"), 502, "provider_error")
    (row,) = ApiUsageLog.objects.filter(provider="stripe")
    assert (row.provider, row.status_code, row.succeeded) == ("stripe", 400, False)


def test_two_razorpay_orders_write_two_rows(auth_client, seeded_package, remote):  # noqa: F811
    remote.post(
        RAZORPAY_ORDERS, json={"id": "order_T1", "entity": "order", "amount": 29900, "currency": "THB"}
    )
    for _ in range(2):
        assert buy(auth_client, seeded_package("Popular Pack"), "razorpay").status_code == 201
    rows = list(
        ApiUsageLog.objects.filter(provider="razorpay").values_list(
            "provider", "endpoint", "status_code", "succeeded"
        )
    )
    assert rows == [("razorpay", "orders.create", 200, True)] * 2


def test_one_email_writes_one_row_counting_its_recipients(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    before = set(ApiUsageLog.objects.values_list("pk", flat=True))
    email_send(template="password_reset", to=["a@example.com", "b@example.com"], context={"name": "A"})
    assert len(mail.outbox) == 1
    # Rows of this call only: a live worker left by another test may log its own emails meanwhile
    # (one recipient each), so the new rows are compared, not the table.
    new = ApiUsageLog.objects.exclude(pk__in=before).filter(provider="email")
    rows = [(row.provider, row.endpoint, row.units, row.succeeded) for row in new]
    assert [row for row in rows if row[2] != 1] == [("email", "password_reset", 2, True)]


def test_the_helper_records_a_failure_reraises_it_and_links_the_job():
    job = JobFactory()
    error = stripe.APIConnectionError("down")
    error.http_status = 503
    with (
        pytest.raises(stripe.APIConnectionError),
        outside_call("replicate", "predictions.create", job_id=job.pk),
    ):
        raise error
    with outside_call("replicate", "predictions.get", job_id=job.pk, units=3) as call:
        call.cost = Decimal("0.0123")
    failed, done = ApiUsageLog.objects.filter(provider="replicate").order_by("created_at", "endpoint")
    assert (failed.succeeded, failed.status_code, failed.job_id) == (False, 503, job.pk)
    assert (done.units, done.cost, done.succeeded) == (3, Decimal("0.0123"), True)
