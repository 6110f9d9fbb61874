"""Reads for the analytics API. Every query's count is fixed: none depends on the length of the
range or on the number of shops, items or orders (each is one aggregate over an index range)."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import (
    Count,
    DecimalField,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, NullIf
from django.utils import timezone

from analytics import sql
from analytics.models import CategoryDailyMetric, DailySalesMetric, PlatformMetric, ProductAnalytics
from analytics.services.metrics import _shop_params
from shops.models import Conversation, Item, Shop
from shops.selectors import low_stock_q

ZERO = Decimal("0.00")
CENT = Decimal("0.01")
SALES_SUMS = [
    "orders",
    "items_sold",
    "gross_revenue",
    "cancelled_revenue",
    "net_revenue",
    "cost",
    "gross_profit",
]


def _q(value: Decimal | None) -> Decimal:
    return (value or ZERO).quantize(CENT)


def _pct(numerator: Decimal, denominator: Decimal) -> Decimal | None:
    return (Decimal(numerator) * 100 / Decimal(denominator)).quantize(CENT) if denominator else None


_TRUNC = {
    "day": "{col}",
    "week": "date_trunc('week', {col})::date",
    "month": "date_trunc('month', {col})::date",
}
SALES_FIELDS = [
    "orders",
    "items_sold",
    "gross_revenue",
    "cancelled_revenue",
    "net_revenue",
    "cost",
    "gross_profit",
    "avg_order_value",
]


def sales_series(*, shop: Shop, date_from: date, date_to: date, interval: str) -> dict:
    """Sales per day, ISO week (period = its Monday) or month (period = its 1st), and the totals
    over the whole range (avg_order_value = gross_revenue ÷ orders), ready for JSON: money as
    decimal strings. One statement: an index range scan on (shop, date), GROUP BY ROLLUP for the
    totals row.

    Raw SQL (names from _meta), formatting included: bench/analytics_nightly.py measured the ORM
    and DRF's per-field serialization at several times this for a year of days."""
    table, col = sql.t(DailySalesMetric), sql.c(DailySalesMetric, "date")
    period = _TRUNC[interval].format(col=col)

    def total(name: str, money: bool) -> str:
        cast = "numeric(14, 2)::text" if money else "bigint"
        return f"COALESCE(SUM({sql.c(DailySalesMetric, name)}), 0)::{cast}"

    orders, gross = sql.c(DailySalesMetric, "orders"), sql.c(DailySalesMetric, "gross_revenue")
    columns = [total(n, n not in ("orders", "items_sold")) for n in SALES_SUMS]
    columns.append(
        f"(CASE WHEN SUM({orders}) > 0 THEN SUM({gross}) / SUM({orders}) ELSE 0 END)::numeric(14, 2)::text"
    )
    statement = (
        f"SELECT ({period})::text AS period, {', '.join(columns)} FROM {table}"
        f" WHERE {sql.c(DailySalesMetric, 'shop')} = %s AND {col} BETWEEN %s AND %s"
        f" GROUP BY ROLLUP (1) ORDER BY 1 NULLS LAST"
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, [shop.pk, date_from, date_to])
        fetched = cursor.fetchall()
    *rows, totals = fetched  # ROLLUP's grand total (period NULL) sorts last and always exists
    return {
        "results": [{"period": r[0], **dict(zip(SALES_FIELDS, r[1:], strict=True))} for r in rows],
        "totals": dict(zip(SALES_FIELDS, totals[1:], strict=True)),
    }


PRODUCT_ORDERING = {"revenue", "units_sold", "profit", "margin_pct"}


def product_ranking(*, shop: Shop, date_from: date, date_to: date, order_by: str, limit: int) -> list[dict]:
    """Per item over the range: sums, margin (profit / revenue) and sell-through (units sold /
    (units sold + stock at the end of the item's last active day in the range)). One query."""
    last_stock = (
        ProductAnalytics.objects.filter(item_id=OuterRef("item_id"), date__gte=date_from, date__lte=date_to)
        .order_by("-date")
        .values("stock_end")[:1]
    )
    money = DecimalField(max_digits=14, decimal_places=2)
    qs = (
        ProductAnalytics.objects.filter(shop=shop, date__gte=date_from, date__lte=date_to)
        .values("item_id", "item__sku", "item__name", "item__category")
        .annotate(
            orders=Sum("orders"),
            units_sold=Sum("units_sold"),
            revenue=Sum("revenue"),
            cost=Sum("cost"),
            profit=Sum("profit"),
            stock_end=Subquery(last_stock),
        )
        .annotate(
            margin_pct=ExpressionWrapper(
                Value(Decimal(100)) * F("profit") / NullIf(F("revenue"), Value(ZERO)), output_field=money
            )
        )
    )
    # margin_pct is computed in the database only to sort; no revenue (NULL margin) sorts last.
    rows = list(qs.order_by(F(order_by).desc(nulls_last=True), "item__name", "item_id")[:limit])
    out = []
    for r in rows:
        units = max(r["units_sold"], 0)
        stock = r["stock_end"]
        out.append(
            {
                "item_id": r["item_id"],
                "sku": r["item__sku"],
                "name": r["item__name"],
                "category": r["item__category"],
                "orders": r["orders"],
                "units_sold": r["units_sold"],
                "revenue": _q(r["revenue"]),
                "cost": _q(r["cost"]),
                "profit": _q(r["profit"]),
                "margin_pct": _pct(r["profit"], r["revenue"]) if r["revenue"] > 0 else None,
                "stock_end": stock,
                "sell_through_pct": _pct(units, units + stock)
                if stock is not None and units + stock > 0
                else None,
            }
        )
    return out


def category_breakdown(*, shop: Shop, date_from: date, date_to: date) -> list[dict]:
    """Per category over the range, by revenue (highest first). One query."""
    rows = (
        CategoryDailyMetric.objects.filter(shop=shop, date__gte=date_from, date__lte=date_to)
        .values("category")
        .annotate(
            items_sold=Sum("items_sold"), revenue=Sum("revenue"), cost=Sum("cost"), profit=Sum("profit")
        )
        .order_by("-revenue", "category")
    )
    return [
        {
            "category": r["category"],
            "items_sold": r["items_sold"],
            "revenue": _q(r["revenue"]),
            "cost": _q(r["cost"]),
            "profit": _q(r["profit"]),
            "margin_pct": _pct(r["profit"], r["revenue"]) if r["revenue"] > 0 else None,
        }
        for r in rows
    ]


def _live_sales(*, shop: Shop, date_from: date, date_to: date) -> dict[date, dict]:
    """The DailySalesMetric rows of these local days, computed now from the orders (not stored)."""
    params = _shop_params(shop_ids=[shop.pk], date_from=date_from, date_to=date_to, now=None)
    with connection.cursor() as cursor:
        cursor.execute(sql.sales_rows_sql(), params)
        names = [col.name for col in cursor.description]
        return {row[1]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}


def shop_local_today(shop: Shop, *, now: datetime | None = None) -> date:
    from zoneinfo import ZoneInfo

    return (now or timezone.now()).astimezone(ZoneInfo(shop.timezone)).date()


def shop_summary(*, shop: Shop, now: datetime | None = None) -> dict:
    """The dashboard card (seed get_shop_stats). Today and yesterday are computed live from the
    orders (the nightly run may not have closed yesterday yet for every timezone); the 7- and
    30-day windows end today (local) and add the stored days before yesterday. Six queries."""
    today = shop_local_today(shop, now=now)
    yesterday = today - timedelta(days=1)
    live = _live_sales(shop=shop, date_from=yesterday, date_to=today)
    stored = DailySalesMetric.objects.filter(
        shop=shop, date__gte=today - timedelta(days=29), date__lt=yesterday
    ).aggregate(
        orders_7=Sum("orders", filter=Q(date__gte=today - timedelta(days=6))),
        revenue_7=Sum("net_revenue", filter=Q(date__gte=today - timedelta(days=6))),
        orders_30=Sum("orders"),
        revenue_30=Sum("net_revenue"),
    )

    def window(key: str) -> dict:
        orders = (stored[f"orders_{key}"] or 0) + sum(r["orders"] for r in live.values())
        revenue = _q(stored[f"revenue_{key}"]) + sum((r["net_revenue"] for r in live.values()), ZERO)
        return {"orders": orders, "revenue": _q(revenue)}

    def day(d: date) -> dict:
        row = live.get(d) or {}
        return {
            "orders": row.get("orders", 0),
            "revenue": _q(row.get("net_revenue")),
            "gross_revenue": _q(row.get("gross_revenue")),
            "cancelled_orders": row.get("cancelled_orders", 0),
            "items_sold": row.get("items_sold", 0),
        }

    items = Item.objects.filter(shop=shop).aggregate(
        item_count=Count("id", filter=Q(is_active=True)),
        low_stock_count=Count("id", filter=low_stock_q() & Q(is_active=True)),
    )
    open_conversations = Conversation.objects.filter(shop=shop, status=Conversation.Status.OPEN).count()
    top = product_ranking(
        shop=shop, date_from=today - timedelta(days=29), date_to=yesterday, order_by="revenue", limit=5
    )
    return {
        "date": today,
        "currency": shop.currency,
        "today": day(today),
        "yesterday": day(yesterday),
        "last_7_days": window("7"),
        "last_30_days": window("30"),
        **items,
        "open_conversations": open_conversations,
        "top_products": [{k: p[k] for k in ("item_id", "sku", "name", "units_sold", "revenue")} for p in top],
    }


def platform_metric_list(*, date_from: date, date_to: date):
    return PlatformMetric.objects.filter(date__gte=date_from, date__lte=date_to).order_by("date")


def platform_summary(*, now: datetime | None = None) -> dict:
    """The latest stored day, plus sums over the stored last 30 UTC days ending yesterday (credit
    revenue also per currency, no conversion). Three queries."""
    yesterday = (now or timezone.now()).astimezone(UTC).date() - timedelta(days=1)
    latest = PlatformMetric.objects.filter(date__lte=yesterday).order_by("-date").first()
    sums = PlatformMetric.objects.filter(
        date__gt=yesterday - timedelta(days=30), date__lte=yesterday
    ).aggregate(
        orders=Coalesce(Sum("orders"), 0),
        credit_revenue=Coalesce(Sum("credit_revenue"), ZERO),
        credits_purchased=Coalesce(Sum("credits_purchased"), 0),
        credits_consumed=Coalesce(Sum("credits_consumed"), 0),
        new_users=Coalesce(Sum("new_users"), 0),
        churned_subscriptions=Coalesce(Sum("churned_subscriptions"), 0),
        jobs_created=Coalesce(Sum("jobs_created"), 0),
        jobs_completed=Coalesce(Sum("jobs_completed"), 0),
        jobs_failed=Coalesce(Sum("jobs_failed"), 0),
        messages=Coalesce(Sum("messages"), 0),
        ai_messages=Coalesce(Sum("ai_messages"), 0),
    )
    sums["credit_revenue"] = _q(sums["credit_revenue"])
    by_currency: dict[str, Decimal] = {}
    for day in PlatformMetric.objects.filter(
        date__gt=yesterday - timedelta(days=30), date__lte=yesterday
    ).values_list("credit_revenue_by_currency", flat=True):
        for currency, amount in (day or {}).items():
            by_currency[currency] = by_currency.get(currency, ZERO) + Decimal(amount)
    sums["credit_revenue_by_currency"] = {k: str(_q(v)) for k, v in sorted(by_currency.items())}
    return {
        "as_of": latest.date if latest else None,
        "latest": latest,
        "last_30_days": {"from": yesterday - timedelta(days=29), "to": yesterday, **sums},
    }
