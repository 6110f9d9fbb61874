"""Wide staff lists in Chromium at 1366 px: the webhook log fits the screen with the longest
values its columns can hold (no sideways scrolling) and staff narrow it to one provider with the
filter; the backup list fits too."""

from credits.models import WebhookLog
from tests.browser.conftest import screenshot

CHANGELIST = "/admin/credits/webhooklog/"


def log_rows():
    outcome = WebhookLog.Outcome.values[0]
    for provider in ("stripe", "razorpay", "truemoney"):
        for n in range(3):
            WebhookLog.objects.create(
                source="payments",
                provider=provider,
                # as long as the columns allow: a 255-character event id, a 64-character type
                event_id=f"evt_{provider}_{n}_" + "x" * (255 - len(f"evt_{provider}_{n}_")),
                event_type=("checkout.session.async_payment_succeeded." + "y" * 64)[:64],
                outcome=outcome,
                status_code=200,
                signature_valid=True,
            )


def overflow(page) -> dict:
    """How far the page and the list's own scrolling box (the admin wraps the table in one that
    scrolls sideways) are wider than what shows: both 0 when everything fits."""
    return page.evaluate(
        """() => {
            const page = document.documentElement;
            const list = document.querySelector('#changelist .results');
            return {page: page.scrollWidth - page.clientWidth, list: list.scrollWidth - list.clientWidth};
        }"""
    )


def test_the_webhook_log_fits_1366_px_and_filters_by_provider(staff_page, console, live_server):
    log_rows()

    staff_page.goto(f"{live_server.url}{CHANGELIST}")
    assert staff_page.locator("#result_list tbody tr").count() == 9
    assert overflow(staff_page) == {"page": 0, "list": 0}

    with staff_page.expect_navigation():
        staff_page.locator("#changelist-filter").get_by_role("link", name="razorpay", exact=True).click()

    cells = staff_page.locator("#result_list tbody td.field-provider").all_inner_texts()
    assert cells == ["razorpay"] * 3
    assert "provider=razorpay" in staff_page.url
    assert overflow(staff_page) == {"page": 0, "list": 0}
    screenshot(staff_page, "webhook-log.png")
    assert console.take() == []


def test_the_backup_list_fits_1366_px(staff_page, console, live_server):
    from datetime import timedelta

    from django.utils import timezone

    from backups.models import BackupLog

    at = timezone.now()
    BackupLog.objects.create(
        kind="weekly",
        status="succeeded",
        started_at=at,
        finished_at=at + timedelta(seconds=42),
        size=48_213_504,
        file_name="weekly/a.dump",
        sha256="0" * 64,
        verified_at=at + timedelta(minutes=1),
        restore_tested_at=at + timedelta(minutes=5),
        database="saas_production_primary",
    )

    staff_page.goto(f"{live_server.url}/admin/backups/backuplog/")

    assert staff_page.locator("#result_list tbody tr").count() == 1
    assert overflow(staff_page) == {"page": 0, "list": 0}
    assert console.take() == []
