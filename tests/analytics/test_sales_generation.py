"""DailySalesMetric by the shop's local day (docs/METRICS.md §Sales), hand-computed."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from analytics.models import CategoryDailyMetric, DailySalesMetric, ProductAnalytics
from analytics.services import metrics_generate_shops
from tests.analytics.factories import cancel_at, order_at
from tests.shops.factories import make_item, make_shop

pytestmark = pytest.mark.django_db


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def bangkok():
    """UTC+7, THB."""
    shop = make_shop(timezone="Asia/Bangkok", currency="THB")
    shop.tea = make_item(
        shop, stock=100, sku="TEA", price=Decimal("100.00"), cost=Decimal("40.00"), category="drinks"
    )
    shop.cake = make_item(
        shop, stock=100, sku="CAKE", price=Decimal("250.00"), cost=Decimal("100.00"), category="food"
    )
    return shop


@pytest.fixture
def new_york():
    """UTC−5 in January, USD."""
    shop = make_shop(timezone="America/New_York", currency="USD")
    shop.mug = make_item(shop, stock=50, sku="MUG", price=Decimal("12.50"), cost=Decimal("5.00"), category="")
    return shop


def row(shop, day) -> DailySalesMetric:
    return DailySalesMetric.objects.get(shop=shop, date=day)


def test_an_order_at_2330_bangkok_counts_on_bangkoks_date_not_utcs(bangkok):
    # given 2026-01-10 23:30 in Bangkok = 16:30 UTC the same day;
    # 2026-01-11 00:30 Bangkok = 17:30 UTC on the 10th
    order_at(bangkok, utc(2026, 1, 10, 16, 30), [(bangkok.tea, 1)])
    order_at(bangkok, utc(2026, 1, 10, 17, 30), [(bangkok.cake, 2)], phone="+66 1", email="")
    # when
    metrics_generate_shops(date_from=date(2026, 1, 9), date_to=date(2026, 1, 12))
    # then
    assert row(bangkok, date(2026, 1, 10)).orders == 1
    assert row(bangkok, date(2026, 1, 10)).gross_revenue == Decimal("100.00")
    day11 = row(bangkok, date(2026, 1, 11))
    assert (day11.orders, day11.items_sold, day11.gross_revenue, day11.cost) == (
        1,
        2,
        Decimal("500.00"),
        Decimal("200.00"),
    )
    assert row(bangkok, date(2026, 1, 9)).orders == 0  # dense: quiet days are zero rows
    assert DailySalesMetric.objects.filter(shop=bangkok).count() == 4


def test_two_shops_two_timezones_two_currencies_hand_computed(bangkok, new_york):
    # given: New York 2026-01-10 22:00 local = 2026-01-11 03:00 UTC → New York's 10th
    order_at(new_york, utc(2026, 1, 11, 3, 0), [(new_york.mug, 4)], phone="", email="A@x.com")
    order_at(new_york, utc(2026, 1, 11, 4, 0), [(new_york.mug, 1)], phone="", email="a@x.com")
    first = order_at(bangkok, utc(2026, 1, 10, 3, 0), [(bangkok.tea, 3), (bangkok.cake, 1)], phone="+66 1")
    order_at(bangkok, utc(2026, 1, 10, 4, 0), [(bangkok.tea, 1)], phone="+66 2")
    # and the first Bangkok order is cancelled two days later, 2026-01-12 09:00 Bangkok
    cancel_at(first, utc(2026, 1, 12, 2, 0))
    # when
    metrics_generate_shops(date_from=date(2026, 1, 10), date_to=date(2026, 1, 12))
    # then New York, USD: 5 mugs × 12.50, cost 5 × 5.00; one customer by e-mail (case-insensitive)
    ny = row(new_york, date(2026, 1, 10))
    assert (
        ny.orders,
        ny.items_sold,
        ny.gross_revenue,
        ny.cost,
        ny.gross_profit,
        ny.avg_order_value,
        ny.unique_customers,
    ) == (2, 5, Decimal("62.50"), Decimal("25.00"), Decimal("37.50"), Decimal("31.25"), 1)
    # Bangkok's 10th still shows the cancelled order as placed (a closed day is never rewritten)
    bk = row(bangkok, date(2026, 1, 10))
    assert (
        bk.orders,
        bk.items_sold,
        bk.gross_revenue,
        bk.cancelled_orders,
        bk.net_revenue,
        bk.cost,
        bk.gross_profit,
        bk.avg_order_value,
        bk.unique_customers,
    ) == (
        2,
        5,
        Decimal("650.00"),
        0,
        Decimal("650.00"),
        Decimal("260.00"),
        Decimal("390.00"),
        Decimal("325.00"),
        2,
    )
    # the cancellation lands on the 12th: revenue 550 (3 tea + 1 cake), cost 220 back out
    bk12 = row(bangkok, date(2026, 1, 12))
    assert (
        bk12.orders,
        bk12.cancelled_orders,
        bk12.cancelled_revenue,
        bk12.net_revenue,
        bk12.cost,
        bk12.gross_profit,
    ) == (0, 1, Decimal("550.00"), Decimal("-550.00"), Decimal("-220.00"), Decimal("-330.00"))
    # categories and products net the cancellation on its own day too
    drinks = CategoryDailyMetric.objects.get(shop=bangkok, date=date(2026, 1, 12), category="drinks")
    assert (drinks.items_sold, drinks.revenue, drinks.cost, drinks.profit) == (
        -3,
        Decimal("-300.00"),
        Decimal("-120.00"),
        Decimal("-180.00"),
    )
    tea10 = ProductAnalytics.objects.get(item=bangkok.tea, date=date(2026, 1, 10))
    assert (tea10.orders, tea10.units_sold, tea10.revenue, tea10.profit, tea10.margin_pct) == (
        2,
        4,
        Decimal("400.00"),
        Decimal("240.00"),
        Decimal("60.00"),
    )
    # over the whole range, Bangkok nets to the one surviving order
    rows = DailySalesMetric.objects.filter(shop=bangkok)
    assert sum(r.net_revenue for r in rows) == Decimal("100.00")


def test_generating_a_range_twice_leaves_every_row_identical(bangkok, new_york):
    order = order_at(bangkok, utc(2026, 1, 10, 3, 0), [(bangkok.tea, 2)])
    order_at(new_york, utc(2026, 1, 11, 3, 0), [(new_york.mug, 1)])
    cancel_at(order, utc(2026, 1, 11, 3, 0))
    first = metrics_generate_shops(date_from=date(2026, 1, 1), date_to=date(2026, 1, 31))

    def snapshot():
        return [
            list(m.objects.order_by("pk").values())
            for m in (DailySalesMetric, CategoryDailyMetric, ProductAnalytics)
        ]

    before = snapshot()
    second = metrics_generate_shops(date_from=date(2026, 1, 1), date_to=date(2026, 1, 31))
    assert first["daily_sales"] == 62 and first["products"] > 0
    assert second == {"daily_sales": 0, "categories": 0, "products": 0}
    assert snapshot() == before


def test_a_stale_sparse_row_is_removed_and_a_changed_one_rewritten(bangkok):
    order_at(bangkok, utc(2026, 1, 10, 3, 0), [(bangkok.tea, 2)])
    metrics_generate_shops(date_from=date(2026, 1, 10), date_to=date(2026, 1, 10))
    ProductAnalytics.objects.filter(item=bangkok.tea).update(revenue=Decimal("1.00"))
    CategoryDailyMetric.objects.create(shop=bangkok, date=date(2026, 1, 10), category="ghost")
    counts = metrics_generate_shops(date_from=date(2026, 1, 10), date_to=date(2026, 1, 10))
    assert counts["products"] == 1 and counts["categories"] == 1
    assert ProductAnalytics.objects.get(item=bangkok.tea).revenue == Decimal("200.00")
    assert not CategoryDailyMetric.objects.filter(category="ghost").exists()


def test_nightly_run_computes_each_shops_last_three_closed_local_days(bangkok, new_york):
    # at 02:00 UTC on the 20th it is 09:00 on the 20th in Bangkok and 21:00 on the 19th in New York
    metrics_generate_shops(now=utc(2026, 1, 20, 2, 0))
    assert sorted(DailySalesMetric.objects.filter(shop=bangkok).values_list("date", flat=True)) == [
        date(2026, 1, 17),
        date(2026, 1, 18),
        date(2026, 1, 19),
    ]
    assert sorted(DailySalesMetric.objects.filter(shop=new_york).values_list("date", flat=True)) == [
        date(2026, 1, 16),
        date(2026, 1, 17),
        date(2026, 1, 18),
    ]


def test_stock_end_and_sell_through_follow_the_stock_history(bangkok):
    # given: TEA holds 100, an order of 30 now (the history rows are written now, too)
    from django.utils import timezone

    from analytics.selectors import shop_local_today

    order_at(bangkok, timezone.now(), [(bangkok.tea, 30)])
    today = shop_local_today(bangkok)
    # when
    metrics_generate_shops(date_from=today, date_to=today)
    # then stock at the end of today is 70; sell-through 30 / (30 + 70)
    tea = ProductAnalytics.objects.get(item=bangkok.tea, date=today)
    assert (tea.units_sold, tea.stock_end, tea.sell_through_pct) == (30, 70, Decimal("30.00"))


def test_a_late_cancellation_lands_on_its_own_day_and_leaves_the_closed_day_as_it_was(bangkok):
    # given the 10th generated and closed
    order = order_at(bangkok, utc(2026, 1, 10, 3, 0), [(bangkok.tea, 2)])
    metrics_generate_shops(date_from=date(2026, 1, 10), date_to=date(2026, 1, 10))
    closed = DailySalesMetric.objects.filter(shop=bangkok, date=date(2026, 1, 10)).values().get()
    # when the order is cancelled on the 13th (Bangkok) and the nightly covers the 11th–13th, then
    # the whole month is backfilled again
    cancel_at(order, utc(2026, 1, 13, 1, 0))
    metrics_generate_shops(now=utc(2026, 1, 14, 2, 0))
    metrics_generate_shops(date_from=date(2026, 1, 1), date_to=date(2026, 1, 31))
    # then the 10th is untouched and the 13th carries the cancellation
    assert DailySalesMetric.objects.filter(shop=bangkok, date=date(2026, 1, 10)).values().get() == closed
    day13 = row(bangkok, date(2026, 1, 13))
    assert (day13.cancelled_orders, day13.cancelled_revenue, day13.net_revenue) == (
        1,
        Decimal("200.00"),
        Decimal("-200.00"),
    )
