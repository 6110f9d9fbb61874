import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from credits.models import CreditTransaction, WebhookLog
from credits.selectors import balance_get
from credits.services import credits_grant
from tests.factories import UserFactory, admin_login

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser():
    return UserFactory(is_staff=True, is_superuser=True)


@pytest.fixture
def admin_client(superuser):
    client = Client()
    admin_login(client, superuser)
    return client


def test_ledger_is_read_only_even_for_superusers(admin_client, user):
    row = credits_grant(user=user, amount=5, idempotency_key="g1")
    change_url = reverse("admin:credits_credittransaction_change", args=[row.pk])

    assert admin_client.get(reverse("admin:credits_credittransaction_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:credits_credittransaction_add")).status_code == 403
    page = admin_client.get(change_url)
    assert page.status_code == 200 and b'name="_save"' not in page.content
    admin_client.post(change_url, {"amount": 500, "type": "bonus"})
    delete_url = reverse("admin:credits_credittransaction_delete", args=[row.pk])
    delete = admin_client.post(delete_url, {"post": "yes"})
    assert delete.status_code == 403
    row.refresh_from_db()
    assert row.amount == 5 and CreditTransaction.objects.count() == 1


def test_balances_and_webhook_logs_are_read_only(admin_client):
    assert admin_client.get(reverse("admin:credits_creditbalance_add")).status_code == 403
    assert admin_client.get(reverse("admin:credits_webhooklog_add")).status_code == 403


def test_webhook_logs_filter_by_provider_outcome_and_date(admin_client):
    WebhookLog.objects.create(source="stripe", event_id="evt_a", outcome="processed", status_code=200)
    WebhookLog.objects.create(source="razorpay", event_id="evt_b", outcome="rejected", status_code=400)

    url = reverse("admin:credits_webhooklog_changelist")
    response = admin_client.get(
        url, {"source": "stripe", "outcome": "processed", "created_at__gte": "2000-01-01 00:00:00+00:00"}
    )

    assert response.status_code == 200
    assert b"evt_a" in response.content and b"evt_b" not in response.content


def test_packages_are_editable(admin_client):
    from credits.models import CreditPackage

    package = CreditPackage.objects.get(name="Pro Pack")
    page = admin_client.get(reverse("admin:credits_creditpackage_change", args=[package.pk]))
    assert page.status_code == 200 and b'name="_save"' in page.content


def _grant_page(client, user):
    page = client.get(reverse("admin:credits_creditaccount_grant", args=[user.pk]))
    assert page.status_code == 200
    return page.context["form"].initial["token"]


def test_staff_grant_goes_through_the_ledger_with_reason_and_author(admin_client, superuser, user):
    token = _grant_page(admin_client, user)
    url = reverse("admin:credits_creditaccount_grant", args=[user.pk])
    data = {"type": "bonus", "amount": 12, "reason": "goodwill for outage", "token": token}

    first = admin_client.post(url, data)
    admin_client.post(url, data)  # the same form submitted twice

    assert first.status_code == 302
    row = CreditTransaction.objects.get(user=user)
    assert (row.type, row.amount, row.reason) == ("bonus", 12, "goodwill for outage")
    assert row.created_by == superuser
    assert balance_get(user=user) == 12


def test_staff_negative_adjustment_below_zero_is_refused(admin_client, user):
    credits_grant(user=user, amount=3, idempotency_key="g1")
    token = _grant_page(admin_client, user)

    response = admin_client.post(
        reverse("admin:credits_creditaccount_grant", args=[user.pk]),
        {"type": "adjustment", "amount": -5, "reason": "fix", "token": token},
    )

    assert response.status_code == 200 and response.context["form"].errors
    assert balance_get(user=user) == 3


@pytest.mark.parametrize(
    "data",
    [
        {"type": "bonus", "amount": -5, "reason": "x"},
        {"type": "adjustment", "amount": 0, "reason": "x"},
        {"type": "usage", "amount": 5, "reason": "x"},
        {"type": "bonus", "amount": 5, "reason": ""},
        {"type": "bonus", "amount": "lots", "reason": "x"},
    ],
)
def test_staff_grant_form_refuses_bad_input(admin_client, user, data):
    token = _grant_page(admin_client, user)
    response = admin_client.post(
        reverse("admin:credits_creditaccount_grant", args=[user.pk]), {**data, "token": token}
    )
    assert response.status_code == 200 and response.context["form"].errors
    assert not CreditTransaction.objects.exists()


def test_staff_without_the_grant_permission_cannot_grant(user):
    staff = UserFactory(is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_creditaccount"))
    client = Client()
    admin_login(client, staff)

    response = client.post(
        reverse("admin:credits_creditaccount_grant", args=[user.pk]),
        {"type": "bonus", "amount": 5, "reason": "x", "token": "8c6f1f0e-0c1e-4a43-9d36-3b7b1c1e2d3f"},
    )

    assert response.status_code == 403 and not CreditTransaction.objects.exists()


def test_staff_with_the_grant_permission_can_grant(user):
    staff = UserFactory(is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="grant_credits"))
    client = Client()
    admin_login(client, staff)
    token = _grant_page(client, user)

    client.post(
        reverse("admin:credits_creditaccount_grant", args=[user.pk]),
        {"type": "bonus", "amount": 5, "reason": "x", "token": token},
    )

    assert balance_get(user=user) == 5


def test_payments_have_no_list_action_that_refunds_without_confirmation(admin_client):
    response = admin_client.get(reverse("admin:credits_payment_changelist"))
    assert "refund_payments" not in response.context["cl"].model_admin.get_actions(response.wsgi_request)


def test_credit_accounts_list_shows_balances(admin_client, user):
    credits_grant(user=user, amount=4, idempotency_key="g1")
    response = admin_client.get(reverse("admin:credits_creditaccount_changelist"))
    assert response.status_code == 200 and user.email.encode() in response.content
