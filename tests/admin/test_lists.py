"""Lists staff can work with: low-stock filter and highlight, shop filters, CSV exports (export
only), labels, and times to the second."""

import csv
import io
from datetime import UTC, datetime

import pytest
import time_machine
from django.contrib import admin
from django.urls import NoReverseMatch, reverse

from credits.models import CreditTransaction
from credits.services import credits_charge, credits_grant
from shops.models import KeywordReply
from tests.credits.factories import PaymentFactory
from tests.factories import UserFactory, admin_login
from tests.jobs.factories import JobFactory
from tests.shops.factories import make_form, make_item, make_shop, place_order

pytestmark = pytest.mark.django_db


def rows_of(response) -> list[dict]:
    assert response.status_code == 200, response.status_code
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith("attachment;")
    assert response.streaming  # written as rows are read, never built whole in memory
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def names(response) -> set[str]:
    return {str(obj) for obj in response.context["cl"].result_list}


def test_low_stock_filter_keeps_items_at_or_below_their_own_threshold(admin_client):
    shop = make_shop()
    low = make_item(shop, stock=2, low_stock_threshold=2, name="At threshold")
    make_item(shop, stock=3, low_stock_threshold=2, name="Above")
    out = make_item(shop, stock=0, low_stock_threshold=0, name="Empty")
    make_item(shop, stock=0, low_stock_threshold=5, track_stock=False, name="Untracked")
    url = reverse("admin:shops_item_changelist")

    assert names(admin_client.get(url, {"stock": "low"})) == {str(low), str(out)}
    assert names(admin_client.get(url, {"stock": "out"})) == {str(out)}
    assert "Above" in "".join(names(admin_client.get(url, {"stock": "ok"})))

    page = admin_client.get(url).content.decode()
    assert page.count('class="low-stock"') == 2


def test_items_and_orders_filter_by_shop(admin_client):
    mine, other = make_shop(name="Mine"), make_shop(name="Other")
    item = make_item(mine)
    make_item(other)
    order = place_order(make_form(mine), [(item, 1)])
    place_order(make_form(other), [(make_item(other), 1)])

    items = admin_client.get(reverse("admin:shops_item_changelist"), {"shop__id__exact": mine.pk})
    orders = admin_client.get(reverse("admin:shops_formsubmission_changelist"), {"shop__id__exact": mine.pk})

    assert names(items) == {str(item)}
    assert names(orders) == {str(order)}
    assert "Mine" in items.content.decode() and 'data-filter-title="shop"' in items.content.decode()


def test_ledger_exports_as_csv_with_the_lists_filters(admin_client):
    alice, bob = UserFactory(email="alice@example.com"), UserFactory(email="bob@example.com")
    credits_grant(user=alice, amount=5, idempotency_key="a", reason="welcome")
    credits_grant(user=bob, amount=7, idempotency_key="b")
    url = reverse("admin:credits_credittransaction_export")

    everything = rows_of(admin_client.get(url))
    only_alice = rows_of(admin_client.get(url, {"user__id__exact": alice.pk}))

    assert len(everything) == 2
    assert [(r["user__email"], r["amount"], r["reason"], r["balance_after"]) for r in only_alice] == [
        ("alice@example.com", "5", "welcome", "5")
    ]
    assert list(only_alice[0]) == [
        "id",
        "created_at",
        "user__email",
        "type",
        "amount",
        "balance_after",
        "reason",
        "job_id",
        "payment__id",
        "idempotency_key",
        "created_by__email",
    ]


def test_exported_cells_never_run_as_spreadsheet_formulas(admin_client):
    user = UserFactory(email="mallory@example.com")
    credits_grant(user=user, amount=5, idempotency_key="f1", reason='=HYPERLINK("http://evil","x")')
    credits_grant(user=user, amount=3, idempotency_key="f2", reason="@SUM(A1)")
    credits_charge(user=user, amount=2, idempotency_key="f3", reason="+1 plain text")

    rows = rows_of(admin_client.get(reverse("admin:credits_credittransaction_export")))

    by_reason = {r["reason"]: r for r in rows}
    assert set(by_reason) == {'\'=HYPERLINK("http://evil","x")', "'@SUM(A1)", "'+1 plain text"}
    assert by_reason["'+1 plain text"]["amount"] == "-2"  # a negative number stays a number


def test_payments_orders_and_jobs_export_as_csv(admin_client):
    payment = PaymentFactory()
    shop = make_shop()
    order = place_order(make_form(shop), [(make_item(shop), 2)])
    job = JobFactory(external_id="export-me")

    payments = rows_of(admin_client.get(reverse("admin:credits_payment_export")))
    orders = rows_of(admin_client.get(reverse("admin:shops_formsubmission_export")))
    jobs = rows_of(admin_client.get(reverse("admin:jobs_job_export")))

    assert [(r["id"], r["user__email"], r["amount"], r["status"]) for r in payments] == [
        (str(payment.pk), payment.user.email, "299.00", "pending")
    ]
    assert [(r["id"], r["shop__name"], r["total"]) for r in orders] == [(str(order.pk), shop.name, "200.00")]
    assert [(r["external_id"], r["kind__code"], r["user__email"]) for r in jobs] == [
        ("export-me", "account_batch", job.user.email)
    ]


def test_exports_are_export_only_and_staff_only(client, staff_client):
    for name in ("credits_credittransaction", "credits_payment", "shops_formsubmission", "jobs_job"):
        with pytest.raises(NoReverseMatch):
            reverse(f"admin:{name}_import")
    admin_login(client, UserFactory())
    response = client.get(reverse("admin:credits_credittransaction_export"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert staff_client("view_job").get(reverse("admin:credits_payment_export")).status_code == 403


def test_changelists_link_to_their_export(admin_client):
    page = admin_client.get(reverse("admin:credits_credittransaction_changelist"), {"type__exact": "bonus"})
    assert (
        f'href="{reverse("admin:credits_credittransaction_export")}?type__exact=bonus"'
        in page.content.decode()
    )


def test_labels_and_plurals(admin_client):
    assert KeywordReply._meta.verbose_name_plural == "keyword replies"
    index = admin_client.get(reverse("admin:app_list", args=["shops"])).content.decode()
    assert "Keyword replies" in index and "Keyword replys" not in index


def test_times_are_shown_to_the_second(admin_client):
    user = UserFactory()
    with time_machine.travel(datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC), tick=False):
        credits_grant(user=user, amount=5, idempotency_key="a")

    page = admin_client.get(reverse("admin:credits_credittransaction_changelist")).content.decode()

    assert "2026-03-04 05:06:07" in page


def test_wide_lists_keep_to_a_few_columns():
    """Jobs, payments, the ledger and stock history fit a 1366 px screen: at most 8 columns."""
    from credits.models import Payment
    from jobs.models import Job
    from shops.models import StockHistory

    for model in (Job, Payment, CreditTransaction, StockHistory):
        assert len(admin.site._registry[model].list_display) <= 8, model
