"""Each staff role's day in Chromium, logged in through the password and the second factor:
support answers a customer, finance refunds a Stripe payment through Stripe's refund API and
confirms a PromptPay payment by hand, operations pauses a schedule and starts a backup, a viewer
can change nothing (no button offered, every POST refused).

With SCREENSHOTS=1 each story also leaves its picture in docs/screenshots/ (1366 px wide)."""

from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.urls import reverse
from django_celery_beat.models import PeriodicTask
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from backups.models import BackupLog
from credits.models import CreditTransaction, ManualPaymentRecord, Payment, PaymentRefund
from credits.selectors import balance_get
from credits.services import payment_complete
from jobs import services as job_services
from jobs.models import Job
from shops.models import FormSubmission, Item
from tests.browser.conftest import STAFF_PASSWORD, log_in, screenshot
from tests.credits.factories import PaymentFactory
from tests.credits.gateway import Gateway
from tests.credits.test_manual_payments import PNG
from tests.credits.test_provider_refunds import (
    STRIPE_WHSEC,
    assert_refund_wire_format,
    paid_through,
    refund_object,
)
from tests.factories import UserFactory
from tests.jobs.conftest import give_credits
from tests.shops.factories import make_form, make_item, make_shop, place_order

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "8c6f1f0e-0c1e-4a43-9d36-3b7b1c1e2d3f"  # an operation form's one-time token


def staff_in(role: str) -> User:
    staff = User.objects.create_user(f"{role}@example.com", STAFF_PASSWORD, is_staff=True, name=role.title())
    staff.groups.add(Group.objects.get(name=role))
    TOTPDevice.objects.create(user=staff, name="phone", confirmed=True)
    return staff


@pytest.fixture
def customer_with_a_cancelled_job(reference_data):
    customer = UserFactory(email="customer.story@example.com")
    give_credits(customer, 20)
    job = job_services.job_create(user=customer, kind_code="account_batch")
    job_services.job_cancel(job=job)
    return customer, Job.objects.get(pk=job.pk)


def test_support_finds_the_customer_by_email_reads_the_timeline_and_retries_the_job(
    page, console, live_server, customer_with_a_cancelled_job
):
    customer, job = customer_with_a_cancelled_job
    support = staff_in("support")
    log_in(page, live_server, support.email)

    page.goto(f"{live_server.url}{reverse('admin:accounts_user_changelist')}")
    page.fill("#searchbar", customer.email)
    with page.expect_navigation():
        page.press("#searchbar", "Enter")
    with page.expect_navigation():
        page.click(f"#result_list a:has-text('{customer.email}')")

    timeline = page.locator("#user-timeline")
    assert job.external_id in timeline.inner_text()
    screenshot(page, "support-user-timeline.png")
    with page.expect_navigation():
        timeline.locator(f"a:has-text('{job.external_id}')").click()
    page.fill("#job-retry-reason", "customer asked on chat")
    with page.expect_navigation():
        page.click("#job-retry-form-submit")

    assert page.locator(".messagelist .success").count() == 1
    assert Job.objects.get(retry_of=job).status == "queued"
    assert console.take() == []


@pytest.fixture
def stripe_gateway(settings):
    """Stripe's API, as a local server the official SDK is pointed at (the live server's threads
    read the same settings)."""
    server = Gateway()
    settings.STRIPE_SECRET_KEY = "sk_test_123"
    settings.STRIPE_API_BASE = server.url
    settings.PAYMENT_WEBHOOK_SECRETS = {**settings.PAYMENT_WEBHOOK_SECRETS, "stripe": STRIPE_WHSEC}
    yield server
    server.stop()


def open_payment_of(page, live_server, email: str) -> None:
    """The payments list searched by the customer's email, then the (only) payment's page."""
    page.goto(f"{live_server.url}{reverse('admin:credits_payment_changelist')}")
    page.fill("#searchbar", email)
    with page.expect_navigation():
        page.press("#searchbar", "Enter")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1
    with page.expect_navigation():
        rows.first.locator("th a").click()


def test_finance_refunds_a_stripe_payment_through_stripes_refund_api(
    page, console, live_server, stripe_gateway
):
    # given a 299.00 THB Stripe payment for 10 credits, completed by Stripe's signed notice
    payment = paid_through("stripe")
    refunds = []

    def create_refund(request):
        refunds.append(refund_object("stripe", request))
        return 200, refunds[-1]

    stripe_gateway.route("POST", "/v1/refunds", create_refund)
    finance = staff_in("finance")
    log_in(page, live_server, finance.email)

    # when finance refunds half of it from the payment's page, with a reason
    open_payment_of(page, live_server, payment.user.email)
    with page.expect_navigation():
        page.click("#refund-payment-link")
    assert "Stripe's refund API" in page.locator("#operation-summary").inner_text()
    page.fill("#refund-payment-form input[name=amount]", "149.50")
    page.fill("#refund-payment-form textarea[name=reason]", "one seat never used")
    with page.expect_navigation():
        page.click("#refund-payment-form-submit")

    # then Stripe was asked once, in its wire format, and the page says the refund went through it
    (call,) = stripe_gateway.requests
    assert (call.method, call.path) == ("POST", "/v1/refunds")
    assert_refund_wire_format("stripe", call, payment, minor=14950)
    success = page.locator(".messagelist .success")
    assert success.count() == 1
    assert f"through Stripe (refund {refunds[0]['id']}" in success.inner_text()
    payment.refresh_from_db()
    assert (payment.status, payment.refunded_amount, payment.credits_clawed_back) == (
        Payment.Status.COMPLETED,
        Decimal("149.50"),
        5,
    )
    (refund,) = PaymentRefund.objects.filter(payment=payment)
    assert (refund.amount, refund.created_by_id, refund.reason) == (
        Decimal("149.50"),
        finance.pk,
        "one seat never used",
    )
    assert "one seat never used" in page.locator("#content-main").inner_text()  # the refunds listed
    screenshot(page, "finance-refund.png")
    assert console.take() == []


def test_finance_confirms_a_promptpay_payment_by_hand_with_its_reference_and_slip(
    page, console, live_server, reference_data
):
    # given a PromptPay payment the customer says they paid (its QR code was shown; no webhook)
    payment = PaymentFactory(provider="promptpay", user=UserFactory(email="promptpay.buyer@example.com"))
    finance = staff_in("finance")
    log_in(page, live_server, finance.email)

    # when finance confirms it from its page with the bank's reference and the slip's picture
    open_payment_of(page, live_server, payment.user.email)
    with page.expect_navigation():
        page.click("#confirm-payment-link")
    page.fill("#confirm-payment-form input[name=reference]", "KBANK-20261204-0042")
    page.set_input_files(
        "#confirm-payment-form input[name=slip]",
        files=[{"name": "slip.png", "mimeType": "image/png", "buffer": PNG}],
    )
    page.fill("#confirm-payment-form textarea[name=reason]", "seen on the bank statement")
    with page.expect_navigation():
        page.click("#confirm-payment-form-submit")

    # then the payment is completed through the payment service, with its record and slip
    assert page.locator(".messagelist .success").count() == 1
    payment.refresh_from_db()
    assert payment.status == Payment.Status.COMPLETED
    assert payment.transaction_id == "promptpay:KBANK-20261204-0042"
    assert balance_get(user=payment.user) == payment.credits
    (record,) = ManualPaymentRecord.objects.filter(payment=payment)
    assert (record.action, record.reference, record.created_by_id) == (
        "confirm",
        "KBANK-20261204-0042",
        finance.pk,
    )
    assert record.slip.read() == PNG
    # the confirmation is listed on the payment's page, with its slip
    assert page.locator(".inline-group", has_text="KBANK-20261204-0042").count() == 1
    assert page.locator("#confirm-payment-link").count() == 0  # nothing left to confirm
    screenshot(page, "finance-confirm.png")
    assert console.take() == []


def test_operations_pauses_a_schedule_and_starts_a_backup(page, console, live_server, monkeypatch):
    from backups import tasks

    call_command("sync_schedules")
    queued = []
    monkeypatch.setattr(tasks.run_backup, "delay", lambda backup_id: queued.append(backup_id))
    schedule = PeriodicTask.objects.filter(enabled=True).order_by("name").first()
    operations = staff_in("operations")
    log_in(page, live_server, operations.email)

    page.goto(f"{live_server.url}{reverse('admin:django_celery_beat_periodictask_changelist')}")
    page.check(f"input.action-select[value='{schedule.pk}']")
    page.select_option("select[name=action]", "disable_tasks")
    with page.expect_navigation():
        page.click("button[name=index]")
    assert PeriodicTask.objects.get(pk=schedule.pk).enabled is False

    page.goto(f"{live_server.url}{reverse('admin:backups_backuplog_changelist')}")
    with page.expect_navigation():
        page.click("#start-backup")
    backup = BackupLog.objects.get()
    assert backup.kind == "manual" and queued == [str(backup.pk)]
    assert page.locator(".messagelist .success").count() == 1
    screenshot(page, "operations-backup.png")
    assert console.take() == []


def test_a_viewer_sees_every_page_and_is_offered_no_change(
    page, console, live_server, customer_with_a_cancelled_job
):
    customer, job = customer_with_a_cancelled_job
    call_command("sync_schedules")
    schedule = PeriodicTask.objects.filter(enabled=True).order_by("name").first()
    paid = payment_complete(payment=PaymentFactory(user=customer))
    pending = PaymentFactory(user=customer, provider="promptpay")
    shop = make_shop()
    item = make_item(shop, stock=10)
    order = place_order(make_form(shop), [(item, 2)])
    viewer = staff_in("viewer")
    log_in(page, live_server, viewer.email)

    def url(name, *args):
        return f"{live_server.url}{reverse(f'admin:{name}', args=args)}"

    # every page opens, and none offers a change
    page.goto(url("accounts_user_change", customer.pk))
    assert page.locator("#user-timeline").is_visible()
    assert page.locator("input[name=_save]").count() == 0 and page.locator("input[name=email]").count() == 0
    assert page.locator("#grant-credits-link").count() == 0
    screenshot(page, "viewer-user.png")
    page.goto(url("jobs_job_change", job.pk))
    assert page.locator("#job-operations").count() == 0
    for payment in (paid, pending):
        page.goto(url("credits_payment_change", payment.pk))
        assert page.locator("#refund-payment-link, #confirm-payment-link").count() == 0
    page.goto(url("shops_item_change", item.pk))
    assert page.locator("#adjust-stock-link").count() == 0
    page.goto(url("shops_formsubmission_change", order.pk))
    assert page.locator("#order-operations").count() == 0
    page.goto(url("backups_backuplog_changelist"))
    assert page.locator("#start-backup").count() == 0
    page.goto(url("django_celery_beat_periodictask_changelist"))
    assert page.locator("select[name=action] option[value=disable_tasks]").count() == 0

    # and a POST made by hand (with the session and a valid CSRF token) to each operation is refused
    def state():
        return (
            User.objects.filter(pk=customer.pk).values_list("name", flat=True).get(),
            Job.objects.filter(retry_of=job).count(),
            CreditTransaction.objects.count(),
            Payment.objects.get(pk=paid.pk).refunded_amount,
            Payment.objects.get(pk=pending.pk).status,
            Item.objects.get(pk=item.pk).stock_quantity,
            FormSubmission.objects.get(pk=order.pk).status,
            BackupLog.objects.count(),
            PeriodicTask.objects.get(pk=schedule.pk).enabled,
            LogEntry.objects.count(),
        )

    before = state()
    token = page.locator("input[name=csrfmiddlewaretoken]").first.input_value()
    reason = {"reason": "a viewer tries", "csrfmiddlewaretoken": token}
    posts = [
        (url("accounts_user_change", customer.pk), {"email": customer.email, "name": "Changed"}),
        (url("accounts_user_delete", customer.pk), {"post": "yes"}),
        (url("credits_creditaccount_grant", customer.pk), {"type": "bonus", "amount": "5", "token": TOKEN}),
        (url("credits_payment_refund", paid.pk), {"amount": "10.00", "token": TOKEN}),
        (url("credits_payment_confirm", pending.pk), {"reference": "KBANK-1"}),
        (url("jobs_job_retry", job.pk), {}),
        (url("shops_item_adjust_stock", item.pk), {"change": "5", "stock_reason": "manual"}),
        (url("shops_formsubmission_transition", order.pk), {"status": "cancelled"}),
        (url("backups_backuplog_start"), {}),
        (url("django_celery_beat_periodictask_change", schedule.pk), {"name": schedule.name, "enabled": ""}),
    ]
    refused = {target: page.request.post(target, form={**data, **reason}).status for target, data in posts}
    # the schedule list's pause action, posted though not offered: not applied
    page.request.post(
        url("django_celery_beat_periodictask_changelist"),
        form={"action": "disable_tasks", "_selected_action": str(schedule.pk), "index": "0", **reason},
    )

    assert refused == {target: 403 for target, _ in posts}
    assert state() == before
    # the token itself was good: the same POST ends the session
    assert page.request.post(f"{live_server.url}/admin/logout/", form=reason).status == 200
    assert [e for e in console.take() if "HTTP 5" in e] == []
