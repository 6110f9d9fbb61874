"""Every staff operation refuses anonymous users, non-staff users and staff without the
permission, and changes nothing for them."""

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client
from django.urls import reverse

from credits.models import CreditTransaction, Payment
from credits.services import payment_complete
from jobs import services as job_services
from shops.models import FormSubmission, Item, Shop
from tests.credits.factories import PaymentFactory
from tests.factories import UserFactory, admin_login
from tests.jobs.conftest import give_credits
from tests.shops.factories import make_form, make_item, make_shop, place_order

pytestmark = pytest.mark.django_db

TOKEN = "8c6f1f0e-0c1e-4a43-9d36-3b7b1c1e2d3f"


@pytest.fixture
def operations():
    """(url, valid POST data) of every operation, and a snapshot of what they would change."""
    customer = UserFactory()
    give_credits(customer, 50)
    job = job_services.job_create(user=customer, kind_code="account_batch")
    payment = payment_complete(payment=PaymentFactory(user=customer))
    shop = make_shop()
    item = make_item(shop, stock=10)
    order = place_order(make_form(shop), [(item, 1)])
    reason = {"reason": "not allowed"}
    urls = [
        (
            reverse("admin:credits_creditaccount_grant", args=[customer.pk]),
            {"type": "bonus", "amount": 5, "token": TOKEN},
        ),
        (reverse("admin:credits_payment_refund", args=[payment.pk]), {"amount": "10.00", "token": TOKEN}),
        (reverse("admin:jobs_job_cancel", args=[job.pk]), {}),
        (reverse("admin:jobs_job_retry", args=[job.pk]), {}),
        (reverse("admin:shops_item_adjust_stock", args=[item.pk]), {"change": 5, "stock_reason": "manual"}),
        (reverse("admin:shops_formsubmission_transition", args=[order.pk]), {"status": "cancelled"}),
        (
            reverse("admin:shops_shop_change_plan", args=[shop.pk]),
            {"plan": "pro", "plan_status": "active", "plan_price": "1", "billing_cycle": "monthly"},
        ),
    ]

    def snapshot():
        return (
            CreditTransaction.objects.count(),
            Payment.objects.get(pk=payment.pk).refunded_amount,
            type(job).objects.get(pk=job.pk).status,
            Item.objects.get(pk=item.pk).stock_quantity,
            FormSubmission.objects.get(pk=order.pk).status,
            Shop.objects.get(pk=shop.pk).plan,
            LogEntry.objects.count(),
        )

    return [(url, {**data, **reason}) for url, data in urls], snapshot


def test_anonymous_and_non_staff_are_sent_to_the_login_page(operations):
    urls, snapshot = operations
    before = snapshot()
    anonymous = Client()
    member = Client()
    admin_login(member, UserFactory())

    for client in (anonymous, member):
        for url, data in urls:
            response = client.post(url, data)
            assert response.status_code == 302 and "/admin/login/" in response["Location"], url

    assert snapshot() == before


def test_staff_without_the_permission_get_403(operations, staff_client):
    urls, snapshot = operations
    before = snapshot()
    staff = staff_client(
        "view_creditaccount", "view_payment", "view_job", "view_item", "view_formsubmission", "view_shop"
    )

    for url, data in urls:
        assert staff.post(url, data).status_code == 403, url
        assert staff.get(url).status_code == 403, url

    assert snapshot() == before
