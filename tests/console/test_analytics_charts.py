"""Analytics lists in the admin have server-drawn charts of their filtered rows."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from analytics.models import DailySalesMetric, PlatformMetric
from tests.shops.factories import make_shop

pytestmark = pytest.mark.django_db

DAY = date(2026, 4, 1)


def bars(response, key: str) -> dict[str, str]:
    chart = next(c for c in response.context["metric_charts"] if c.key == key)
    return {bar.label: bar.value for bar in chart.bars}


def test_the_platform_metrics_list_charts_a_bar_per_day(admin_client):
    for offset, orders in enumerate([3, 0, 7]):
        PlatformMetric.objects.create(date=DAY + timedelta(days=offset), orders=orders, new_users=offset)

    response = admin_client.get(reverse("admin:analytics_platformmetric_changelist"))

    assert bars(response, "orders") == {"2026-04-01": 3, "2026-04-02": 0, "2026-04-03": 7}
    html = response.content.decode()
    assert 'id="metric-charts"' in html and html.count('<svg class="dash-chart"') == 6


def test_sales_charts_follow_the_shop_filter_and_never_add_currencies(admin_client):
    thb, usd = make_shop(currency="THB"), make_shop(currency="USD")
    DailySalesMetric.objects.create(shop=thb, date=DAY, orders=2, net_revenue=Decimal("200.00"))
    DailySalesMetric.objects.create(shop=usd, date=DAY, orders=1, net_revenue=Decimal("9.00"))
    url = reverse("admin:analytics_dailysalesmetric_changelist")

    both = admin_client.get(url)
    one = admin_client.get(url, {"shop__id__exact": thb.pk})

    assert bars(both, "orders") == {"2026-04-01": 3}
    assert "net_revenue" not in {c.key for c in both.context["metric_charts"]}
    assert bars(one, "net_revenue") == {"2026-04-01": Decimal("200.00")}
