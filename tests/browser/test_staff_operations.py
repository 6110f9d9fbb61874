"""Every staff operation done in a real browser as staff would — follow the link or
form on the object's page, fill it in, confirm — then checked in the database: the effect, the
ledger or stock history, and the admin history entry with who and why."""

from decimal import Decimal

from django.urls import reverse

from credits.models import CreditTransaction, Payment
from credits.selectors import balance_get
from credits.services import payment_complete
from jobs import services as job_services
from jobs.models import Job
from shops.models import Item, Shop, StockHistory
from tests.admin.helpers import assert_logged, history
from tests.credits.factories import PaymentFactory
from tests.factories import UserFactory
from tests.jobs.conftest import give_credits
from tests.shops.factories import make_form, make_item, make_shop, place_order


def open_change_page(page, live_server, model: str, pk) -> None:
    page.goto(f"{live_server.url}{reverse(f'admin:{model}_change', args=[pk])}")


def confirm(page, form_id: str) -> None:
    """Submit an operation's form and wait for the redirect back to the object's page."""
    with page.expect_navigation():
        page.click(f"#{form_id}-submit")
    assert page.locator(".messagelist .success").count() == 1, page.locator(".messagelist").all_inner_texts()


def test_credits_and_jobs_grant_partial_refund_job_cancel_and_retry(
    staff_page, console, live_server, superuser, reference_data
):
    page = staff_page
    customer = UserFactory(email="customer@example.com")
    paid = payment_complete(payment=PaymentFactory(user=customer))  # 299.00 THB, 10 credits
    give_credits(customer, 100)
    job = job_services.job_create(user=customer, kind_code="account_batch", requested_count=3)
    assert balance_get(user=customer) == 107

    # grant: from the user page's link, a bonus of 25 with a reason
    open_change_page(page, live_server, "accounts_user", customer.pk)
    page.click("#grant-credits-link")
    page.select_option("#grant-credits-form select[name=type]", "bonus")
    page.fill("#grant-credits-form input[name=amount]", "25")
    page.fill("#grant-credits-form textarea[name=reason]", "goodwill after outage")
    confirm(page, "grant-credits-form")
    assert balance_get(user=customer) == 132
    grant = CreditTransaction.objects.get(user=customer, type="bonus", amount=25)
    assert grant.created_by_id == superuser.pk and grant.reason == "goodwill after outage"
    assert_logged(customer, by=superuser, contains=["+25 credits", "Reason: goodwill after outage"])

    # partial refund: the payment page's link, a confirmation page, half the amount
    open_change_page(page, live_server, "credits_payment", paid.pk)
    page.click("#refund-payment-link")
    page.fill("#refund-payment-form input[name=amount]", "149.50")
    page.fill("#refund-payment-form textarea[name=reason]", "one seat unused")
    confirm(page, "refund-payment-form")
    paid.refresh_from_db()
    assert (paid.status, paid.refunded_amount, paid.credits_clawed_back) == (
        Payment.Status.COMPLETED,
        Decimal("149.50"),
        5,
    )
    assert balance_get(user=customer) == 127
    assert_logged(paid, by=superuser, contains=["Refunded 149.50 THB", "Reason: one seat unused"])

    # cancel the queued job from its page: refunded
    open_change_page(page, live_server, "jobs_job", job.pk)
    page.fill("#job-cancel-reason", "customer asked")
    confirm(page, "job-cancel-form")
    assert Job.objects.get(pk=job.pk).status == "cancelled" and balance_get(user=customer) == 130

    # retry it from the same page: one new job, charged again
    page.fill("#job-retry-reason", "customer changed their mind")
    confirm(page, "job-retry-form")
    retry = Job.objects.get(retry_of=job)
    assert retry.status == "queued" and balance_get(user=customer) == 127
    messages = [e.get_change_message() for e in history(job)]
    assert (
        len(messages) == 2 and "Reason: customer asked" in messages[0] and "Created retry job" in messages[1]
    )

    assert console.take() == []


def test_shops_stock_adjust_order_cancel_restocks_once_and_plan_change(
    staff_page, console, live_server, superuser
):
    page = staff_page
    shop = make_shop(name="Corner Shop")
    item = make_item(shop, stock=10, sku="MUG-1", name="Mug")
    order = place_order(make_form(shop), [(item, 4)])
    assert Item.objects.get(pk=item.pk).stock_quantity == 6

    # stock: +5 as a return, with a reason
    open_change_page(page, live_server, "shops_item", item.pk)
    page.click("#adjust-stock-link")
    page.fill("#adjust-stock-form input[name=change]", "5")
    page.select_option("#adjust-stock-form select[name=stock_reason]", "return")
    page.fill("#adjust-stock-form textarea[name=reason]", "customer returned 5")
    confirm(page, "adjust-stock-form")
    assert Item.objects.get(pk=item.pk).stock_quantity == 11
    entry = StockHistory.objects.filter(item=item).order_by("-created_at").first()
    assert (entry.change, entry.reason, entry.quantity_after) == (5, "return", 11)
    assert_logged(item, by=superuser, contains=["+5 (return)", "6 → 11", "Reason: customer returned 5"])

    # order: cancel from its page gives the 4 back, once (the page no longer offers it after)
    open_change_page(page, live_server, "shops_formsubmission", order.pk)
    page.fill("#order-transition-reason", "out of delivery area")
    with page.expect_navigation():
        page.click("#order-to-cancelled")
    order.refresh_from_db()
    assert order.status == "cancelled" and Item.objects.get(pk=item.pk).stock_quantity == 15
    assert page.locator("#order-to-cancelled").count() == 0
    assert_logged(
        order, by=superuser, contains=["new → cancelled", "stock given back", "out of delivery area"]
    )

    # plan: from the shop page's link
    open_change_page(page, live_server, "shops_shop", shop.pk)
    page.click("#change-plan-link")
    page.select_option("#change-plan-form select[name=plan]", "pro")
    page.select_option("#change-plan-form select[name=plan_status]", "active")
    page.fill("#change-plan-form input[name=plan_price]", "990.00")
    page.select_option("#change-plan-form select[name=billing_cycle]", "yearly")
    page.fill("#change-plan-form textarea[name=reason]", "annual deal")
    confirm(page, "change-plan-form")
    shop = Shop.objects.get(pk=shop.pk)
    assert (shop.plan, shop.plan_status, shop.plan_price, shop.billing_cycle) == (
        "pro",
        "active",
        Decimal("990.00"),
        "yearly",
    )
    assert_logged(shop, by=superuser, contains=["plan free → pro", "Reason: annual deal"])

    assert console.take() == []
