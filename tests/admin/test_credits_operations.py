"""Credits from the admin: the user page, grants and partial refunds, each through the service
the API and the webhooks use, each in the admin history with who and why."""

from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client
from django.urls import reverse

from accounts.models import Subscription, User
from config.admin_tools import ALREADY_DONE
from credits.models import CreditTransaction, Payment
from credits.selectors import balance_get
from credits.services import credits_charge, credits_grant, payment_complete, payment_refund
from tests.admin.helpers import assert_logged, form_token, history, page_messages
from tests.credits.conftest import run_in_threads
from tests.credits.factories import PaymentFactory
from tests.factories import UserFactory, admin_login
from tests.jobs.factories import JobFactory
from tests.shops.factories import make_shop

pytestmark = pytest.mark.django_db


def grant_url(user):
    return reverse("admin:credits_creditaccount_grant", args=[user.pk])


def refund_url(payment):
    return reverse("admin:credits_payment_refund", args=[payment.pk])


@pytest.fixture
def paid():
    """A completed 299.00 THB payment that granted 10 credits."""
    payment = PaymentFactory()
    return payment_complete(payment=payment)


# -- the user page -----------------------------------------------------------------------------


def test_user_page_shows_balance_license_subscription_and_links_to_the_users_records(admin_client):
    user = UserFactory()
    credits_grant(user=user, amount=7, idempotency_key="g")
    Subscription.objects.create(user=user, amount=Decimal("299.00"), end_date="2030-01-01T00:00:00Z")
    JobFactory(user=user, external_id="mine")
    JobFactory(external_id="not-mine")
    make_shop(owner=user, name="Mine")

    page = admin_client.get(reverse("admin:accounts_user_change", args=[user.pk]))

    html = page.content.decode()
    assert '<strong id="user-balance">7</strong>' in html
    assert 'id="user-license">Trial · Active · expires ' in html
    assert "Premium · Active · 299.00 THB Monthly · until 2030-01-01 00:00:00" in html
    assert f'href="{grant_url(user)}" id="grant-credits-link"' in html
    jobs = admin_client.get(reverse("admin:jobs_job_changelist"), {"user__id__exact": user.pk})
    assert [job.external_id for job in jobs.context["cl"].result_list] == ["mine"]
    for link_id, name in [
        ("user-ledger-link", "credits_credittransaction"),
        ("user-payments-link", "credits_payment"),
        ("user-jobs-link", "jobs_job"),
        ("user-shops-link", "shops_shop"),
    ]:
        assert f'id="{link_id}" href="{reverse(f"admin:{name}_changelist")}?' in html
    shops = admin_client.get(reverse("admin:shops_shop_changelist"), {"owner__id__exact": user.pk})
    assert [shop.name for shop in shops.context["cl"].result_list] == ["Mine"]


# -- grant / adjust ----------------------------------------------------------------------------


def test_grant_from_the_user_page_writes_the_ledger_and_the_admin_history(admin_client, superuser):
    user = UserFactory()
    token = form_token(admin_client, grant_url(user))

    response = admin_client.post(
        grant_url(user), {"type": "adjustment", "amount": 25, "reason": "outage goodwill", "token": token}
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:accounts_user_change", args=[user.pk])
    row = CreditTransaction.objects.get(user=user)
    assert (row.type, row.amount, row.reason, row.created_by_id) == (
        "adjustment",
        25,
        "outage goodwill",
        superuser.pk,
    )
    assert_logged(
        User.objects.get(pk=user.pk), by=superuser, contains=["+25 credits", "Reason: outage goodwill"]
    )


def test_negative_adjustment_takes_credits_and_is_logged(admin_client, superuser):
    user = UserFactory()
    credits_grant(user=user, amount=10, idempotency_key="g")
    token = form_token(admin_client, grant_url(user))

    admin_client.post(
        grant_url(user), {"type": "adjustment", "amount": -4, "reason": "duplicate", "token": token}
    )

    assert balance_get(user=user) == 6
    assert_logged(User.objects.get(pk=user.pk), by=superuser, contains=["-4 credits", "balance now 6"])


def test_adjustment_below_zero_is_an_error_message_and_changes_nothing(admin_client):
    user = UserFactory()
    credits_grant(user=user, amount=3, idempotency_key="g")
    token = form_token(admin_client, grant_url(user))

    response = admin_client.post(
        grant_url(user), {"type": "adjustment", "amount": -5, "reason": "fix", "token": token}
    )

    assert response.status_code == 200
    assert "Not enough credits" in response.content.decode()
    assert "Nothing was changed: see the errors below." in page_messages(response)
    assert balance_get(user=user) == 3 and history(User.objects.get(pk=user.pk)) == []


def test_grant_needs_a_reason(admin_client):
    user = UserFactory()
    token = form_token(admin_client, grant_url(user))

    response = admin_client.post(
        grant_url(user), {"type": "bonus", "amount": 5, "reason": "   ", "token": token}
    )

    assert response.status_code == 200 and "reason" in response.context["form"].errors
    assert not CreditTransaction.objects.exists() and not LogEntry.objects.exists()


def test_grant_page_get_changes_nothing_and_non_staff_are_sent_to_login(client):
    user = UserFactory()
    member = UserFactory()
    admin_login(client, member)

    response = client.post(
        grant_url(user),
        {"type": "bonus", "amount": 5, "reason": "x", "token": "8c6f1f0e-0c1e-4a43-9d36-3b7b1c1e2d3f"},
    )

    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert not CreditTransaction.objects.exists() and not LogEntry.objects.exists()


# -- refunds -----------------------------------------------------------------------------------


def test_partial_refund_claws_back_credits_in_proportion_and_is_logged(admin_client, superuser, paid):
    page = admin_client.get(refund_url(paid))
    assert page.status_code == 200 and 'id="refund-payment-form"' in page.content.decode()
    assert Payment.objects.get(pk=paid.pk).refunded_amount == 0  # the confirmation page changes nothing
    token = str(page.context["form"].initial["token"])

    response = admin_client.post(
        refund_url(paid), {"amount": "149.50", "reason": "half the order arrived", "token": token}
    )

    assert response.status_code == 302
    paid.refresh_from_db()
    assert paid.status == Payment.Status.COMPLETED
    assert (paid.refunded_amount, paid.credits_clawed_back) == (Decimal("149.50"), 5)
    assert balance_get(user=paid.user) == 5
    row = CreditTransaction.objects.get(type="adjustment")
    assert (row.amount, row.reason, row.created_by_id) == (-5, "half the order arrived", superuser.pk)
    assert_logged(paid, by=superuser, contains=["Refunded 149.50 THB", "Reason: half the order arrived"])


def test_refunding_the_rest_completes_the_refund(admin_client, paid):
    for amount in ("100.00", "199.00"):
        token = form_token(admin_client, refund_url(paid))
        admin_client.post(refund_url(paid), {"amount": amount, "reason": "returned", "token": token})

    paid.refresh_from_db()
    assert paid.status == Payment.Status.REFUNDED and paid.refunded_amount == paid.amount
    assert paid.credits_clawed_back == 10 and balance_get(user=paid.user) == 0
    assert len(history(paid)) == 2


def test_submitting_the_same_refund_twice_refunds_once(admin_client, paid):
    token = form_token(admin_client, refund_url(paid))
    data = {"amount": "50.00", "reason": "double click", "token": token}

    admin_client.post(refund_url(paid), data)
    again = admin_client.post(refund_url(paid), data, follow=True)

    paid.refresh_from_db()
    assert paid.refunded_amount == Decimal("50.00")
    assert CreditTransaction.objects.filter(type="adjustment").count() == 1
    assert ALREADY_DONE in page_messages(again) and len(history(paid)) == 1


def test_refund_of_spent_credits_records_the_shortfall(admin_client, paid):
    credits_charge(user=paid.user, amount=8, idempotency_key="spent")
    token = form_token(admin_client, refund_url(paid))

    admin_client.post(refund_url(paid), {"amount": "299.00", "reason": "chargeback", "token": token})

    paid.refresh_from_db()
    assert (paid.status, paid.credits_clawed_back, paid.refund_shortfall) == ("refunded", 2, 8)
    assert balance_get(user=paid.user) == 0


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"amount": "300.00", "reason": "x"}, "amount"),
        ({"amount": "0", "reason": "x"}, "amount"),
        ({"amount": "-5", "reason": "x"}, "amount"),
        ({"amount": "lots", "reason": "x"}, "amount"),
        ({"amount": "1.001", "reason": "x"}, "amount"),
        ({"amount": "10", "reason": ""}, "reason"),
    ],
)
def test_bad_refund_input_is_a_form_error_and_changes_nothing(admin_client, paid, data, field):
    token = form_token(admin_client, refund_url(paid))

    response = admin_client.post(refund_url(paid), {**data, "token": token})

    assert response.status_code == 200 and field in response.context["form"].errors
    paid.refresh_from_db()
    assert paid.refunded_amount == 0 and balance_get(user=paid.user) == 10
    assert not LogEntry.objects.exists()


def test_refund_of_a_payment_that_is_not_completed_is_an_error_message(admin_client):
    payment = PaymentFactory()  # pending
    token = form_token(admin_client, refund_url(payment))

    response = admin_client.post(refund_url(payment), {"amount": "10.00", "reason": "x", "token": token})

    assert response.status_code == 200
    assert "A pending payment cannot be refunded." in response.content.decode()
    payment.refresh_from_db()
    assert payment.status == "pending" and payment.refunded_amount == 0 and not LogEntry.objects.exists()


def test_refund_needs_the_refund_permission(staff_client, paid):
    viewer = staff_client("view_payment")
    assert viewer.get(reverse("admin:credits_payment_change", args=[paid.pk])).status_code == 200
    assert (
        'id="refund-payment-link"'
        not in viewer.get(reverse("admin:credits_payment_change", args=[paid.pk])).content.decode()
    )

    response = viewer.post(
        refund_url(paid), {"amount": "10.00", "reason": "x", "token": "8c6f1f0e-0c1e-4a43-9d36-3b7b1c1e2d3f"}
    )

    assert response.status_code == 403
    paid.refresh_from_db()
    assert paid.refunded_amount == 0

    refunder = staff_client("view_payment", "refund_payment")
    assert (
        'id="refund-payment-link"'
        in refunder.get(reverse("admin:credits_payment_change", args=[paid.pk])).content.decode()
    )
    token = form_token(refunder, refund_url(paid))
    refunder.post(refund_url(paid), {"amount": "10.00", "reason": "x", "token": token})
    paid.refresh_from_db()
    assert paid.refunded_amount == Decimal("10.00")


def test_provider_refund_after_a_partial_staff_refund_refunds_the_rest(paid):
    payment_refund(payment=paid, amount=Decimal("99.00"), reason="part", idempotency_key="admin:1")

    # the provider's webhook: no amount, the rest
    done = payment_refund(payment=paid, reason="provider refund")
    again = payment_refund(payment=paid, reason="provider refund, redelivered")

    assert done.status == again.status == Payment.Status.REFUNDED
    assert again.refunded_amount == paid.amount and again.credits_clawed_back == 10
    assert balance_get(user=paid.user) == 0


@pytest.mark.django_db(transaction=True)
def test_concurrent_refunds_never_refund_more_than_was_paid():
    # given a completed 299.00 payment and two staff members on its refund page
    payment = payment_complete(payment=PaymentFactory())
    clients = []
    for _ in range(3):
        client = Client()
        admin_login(client, UserFactory(is_staff=True, is_superuser=True))
        clients.append((client, form_token(client, refund_url(payment))))
    same_token = clients[0][1]

    # when they refund 200.00 each at once (two of them submitting the same form)
    def refund(client, token):
        return client.post(
            refund_url(payment), {"amount": "200.00", "reason": "race", "token": token}
        ).status_code

    results = run_in_threads(refund, [(clients[0][0], same_token), (clients[1][0], same_token), clients[2]])

    # then 200.00 was refunded once: the other form is refused (at most 99.00 left), and the
    # replay is either a no-op (302) or, when it loads the page after that refund, refused too
    payment.refresh_from_db()
    assert payment.refunded_amount == Decimal("200.00") and payment.status == "completed"
    assert CreditTransaction.objects.filter(type="adjustment").count() == 1
    assert 302 in results and 200 in results and set(results) <= {200, 302}
    assert len(history(payment)) == 1


def test_submitting_the_same_grant_twice_grants_and_logs_once(admin_client):
    user = UserFactory()
    token = form_token(admin_client, grant_url(user))
    data = {"type": "bonus", "amount": 12, "reason": "goodwill", "token": token}

    admin_client.post(grant_url(user), data)
    again = admin_client.post(grant_url(user), data, follow=True)

    assert balance_get(user=user) == 12
    assert ALREADY_DONE in page_messages(again)
    assert len(history(User.objects.get(pk=user.pk))) == 1


@pytest.mark.django_db(transaction=True)
def test_the_same_grant_form_submitted_concurrently_grants_and_logs_once():
    user = UserFactory()
    client = Client()
    admin_login(client, UserFactory(is_staff=True, is_superuser=True))
    token = form_token(client, grant_url(user))
    clients = [Client() for _ in range(3)]
    for other in clients:
        other.cookies = client.cookies  # one staff member, several tabs

    results = run_in_threads(
        lambda c: (
            c.post(grant_url(user), {"type": "bonus", "amount": 5, "reason": "x", "token": token}).status_code
        ),
        [(c,) for c in clients],
    )

    assert results == [302, 302, 302]
    assert balance_get(user=user) == 5 and CreditTransaction.objects.filter(user=user).count() == 1
    assert len(history(User.objects.get(pk=user.pk))) == 1
