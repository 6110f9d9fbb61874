"""The dashboard's charts drew in a real browser, from the figures in the database, with and
without JavaScript (they are server-drawn SVG)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from analytics.services import metrics_generate_platform
from console.dashboard import DAYS
from tests.analytics.factories import order_at
from tests.browser.conftest import VIEWPORT, log_in
from tests.shops.factories import make_item, make_shop

# The server's clock, pinned (ticking, so sessions and page loads behave). In the future: the
# browser keeps its own clock and would drop a session cookie that expired by its time.
PINNED = datetime(2030, 6, 15, 12, 0, tzinfo=UTC)


@pytest.fixture
def pinned():
    with time_machine.travel(PINNED, tick=True):
        yield


@pytest.fixture
def orders_on_two_days(pinned, live_server):
    """Two orders three days ago (stored by the nightly run), one today (live)."""
    shop = make_shop(currency="THB")
    item = make_item(shop, stock=100, price=Decimal("100.00"))
    now = timezone.now()
    today = now.astimezone(UTC).date()
    for _ in range(2):
        order_at(shop, now - timedelta(days=3), [(item, 1)])
    order_at(shop, now, [(item, 1)])
    metrics_generate_platform(date_from=today - timedelta(days=DAYS - 1), date_to=today - timedelta(days=1))


def drawn_bars(page, chart: str) -> list[float]:
    """The rendered height, in CSS pixels, of each bar of a chart, oldest day first."""
    return [
        box["height"] if box else 0.0
        for box in (r.bounding_box() for r in page.locator(f'svg[data-chart="{chart}"] rect.bar').all())
    ]


def assert_charts_drew(page) -> None:
    charts = page.locator("svg.dash-chart").all()
    assert len(charts) >= 10  # GMV, seven daily figures, jobs by status, queue wait
    for chart in charts:
        box = chart.bounding_box()
        assert box is not None and box["width"] > 100 and box["height"] > 10, chart.get_attribute(
            "data-chart"
        )
    orders = drawn_bars(page, "orders")
    assert len(orders) == DAYS
    assert [i for i, h in enumerate(orders) if h > 0] == [DAYS - 4, DAYS - 1]
    assert orders[DAYS - 4] == pytest.approx(2 * orders[DAYS - 1], rel=0.05)  # two orders vs one
    assert len(drawn_bars(page, "gmv-THB")) == DAYS


def test_the_dashboards_charts_drew_from_the_figures(
    pinned, staff_page, console, live_server, orders_on_two_days
):
    staff_page.goto(f"{live_server.url}/admin/")

    assert staff_page.locator("#dash-orders .value").first.inner_text() == "1"  # today
    assert_charts_drew(staff_page)
    assert console.take() == []


def test_the_charts_draw_without_javascript(pinned, browser, live_server, superuser, orders_on_two_days):
    context = browser.new_context(viewport=VIEWPORT, java_script_enabled=False)
    page = context.new_page()
    try:
        log_in(page, live_server)

        assert_charts_drew(page)
    finally:
        context.close()
