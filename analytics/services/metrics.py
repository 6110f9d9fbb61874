"""Generating and verifying the pre-aggregated metrics (definitions: docs/METRICS.md)."""

import logging
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

from django.db import connection, transaction
from django.utils import timezone

from analytics import sql
from analytics.models import CategoryDailyMetric, DailySalesMetric, PlatformMetric, ProductAnalytics
from credits.models import CURRENCY_THB as PLATFORM_CURRENCY
from shops.models import OrderStatus

logger = logging.getLogger(__name__)

CLOSED_DAYS = 3  # the nightly run recomputes each shop's last three closed local days


def _shop_params(
    *,
    shop_ids: list[UUID] | None,
    date_from: date | None,
    date_to: date | None,
    now: datetime | None,
    days: int = CLOSED_DAYS,
) -> dict:
    return {
        "shop_ids": [str(s) for s in shop_ids] if shop_ids is not None else None,
        "date_from": date_from,
        "date_to": date_to,
        "days": days,
        "now": now or timezone.now(),
        "cancelled": OrderStatus.CANCELLED,
    }


def platform_params(*, date_from: date, date_to: date) -> dict:
    return {
        **sql.PLATFORM_PARAMS,
        "date_from": date_from,
        "date_to": date_to,
        "platform_currency": PLATFORM_CURRENCY,
    }


# The rows of a sparse table inside the scope of a generation (shops and their local ranges).
_SPARSE_SCOPE = """EXISTS (SELECT 1 FROM b WHERE b.shop_id = tgt.shop_id
                             AND tgt.date BETWEEN b.d_from AND b.d_to)"""


def _split(select_sql: str) -> tuple[str, str]:
    """`WITH a AS (…), b AS (…) SELECT …` → ("a AS (…), b AS (…)", "…" after the last SELECT)."""
    body = select_sql.strip()
    if not body.startswith("WITH "):
        raise ValueError("a metrics SELECT starts with its WITH list")
    head, _, tail = body[len("WITH ") :].rpartition("\nSELECT ")
    return head, tail


def _write_ctes(
    *, model, rows: str, key: list[str], columns: list[str], stale_scope: str | None, name: str
) -> tuple[str, str]:
    """CTEs that INSERT the rows of CTE `rows`, rewriting a stored row only when a value differs
    (so a second run writes nothing) and, with `stale_scope`, DELETE stored rows inside that scope
    that `rows` no longer yields (sparse tables); and the SQL expression counting what they wrote."""
    table = sql.t(model)
    cols = key + columns
    col = {n: f'"{model._meta.get_field(n).column}"' for n in cols}
    sets = ", ".join(f"{col[n]} = EXCLUDED.{col[n]}" for n in columns)
    old = ", ".join(f"{table}.{col[n]}" for n in columns)
    new = ", ".join(f"EXCLUDED.{col[n]}" for n in columns)
    ctes = f"""
up_{name} AS (
    INSERT INTO {table} ({", ".join(col[n] for n in cols)}, created_at, updated_at)
    SELECT {", ".join(cols)}, now(), now() FROM {rows}
    ON CONFLICT ({", ".join(col[n] for n in key)}) DO UPDATE SET {sets}, updated_at = EXCLUDED.updated_at
    WHERE ({old}) IS DISTINCT FROM ({new})
    RETURNING 1
)"""
    count = f"(SELECT COUNT(*) FROM up_{name})"
    if stale_scope is not None:
        match = " AND ".join(f"r.{n} = tgt.{col[n]}" for n in key)
        ctes += f""",
gone_{name} AS (
    DELETE FROM {table} tgt WHERE {stale_scope}
       AND NOT EXISTS (SELECT 1 FROM {rows} r WHERE {match})
    RETURNING 1
)"""
        count += f" + (SELECT COUNT(*) FROM gone_{name})"
    return ctes, count


SHOP_TABLES = [
    # (count name, model, parts, key, columns, stale scope)
    ("daily_sales", DailySalesMetric, sql.sales_parts, ["shop_id", "date"], sql.SALES_COLUMNS, None),
    (
        "categories",
        CategoryDailyMetric,
        sql.category_parts,
        ["shop_id", "date", "category"],
        sql.CATEGORY_COLUMNS,
        _SPARSE_SCOPE,
    ),
    (
        "products",
        ProductAnalytics,
        sql.product_parts,
        ["item_id", "date"],
        sql.PRODUCT_COLUMNS,
        _SPARSE_SCOPE,
    ),
]


def shop_statement() -> str:
    """ONE statement writing the three shop tables: the shops' ranges and their order lines
    (`moves`) are computed once and shared by the three upserts. It returns one row of counts
    in SHOP_TABLES order."""
    ctes, counts = [sql.SHOP_COMMON], []
    for name, model, parts, key, columns, scope in SHOP_TABLES:
        extra, final = parts()
        if extra:
            ctes.append(extra.strip())
        ctes.append(f"rows_{name} AS (SELECT {final})")
        write, count = _write_ctes(
            model=model, rows=f"rows_{name}", key=key, columns=columns, stale_scope=scope, name=name
        )
        ctes.append(write.strip())
        counts.append(count)
    return "WITH " + ",\n".join(ctes) + "\nSELECT " + ", ".join(counts)


def platform_statement() -> str:
    head, final = _split(sql.platform_rows_sql())
    write, count = _write_ctes(
        model=PlatformMetric,
        rows="rows_platform",
        key=["date"],
        columns=sql.PLATFORM_COLUMNS,
        stale_scope=None,
        name="platform",
    )
    return f"WITH {head},\nrows_platform AS (SELECT {final}),{write}\nSELECT {count}"


@transaction.atomic
def metrics_generate_shops(
    *,
    shop_ids: list[UUID] | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    now: datetime | None = None,
) -> dict:
    """Compute DailySalesMetric, CategoryDailyMetric and ProductAnalytics for the shops (all when
    `shop_ids` is None) over the local days [date_from, date_to] — or, with no dates, each shop's
    last three closed local days at `now` (the nightly run).

    One set-based statement (shop_statement); no row locks beyond the upserted rows.
    Idempotent: a second run over the same data writes nothing. Returns rows written per table.
    """
    params = _shop_params(shop_ids=shop_ids, date_from=date_from, date_to=date_to, now=now)
    with connection.cursor() as cursor:
        cursor.execute(shop_statement(), params)
        row = cursor.fetchone()
    return {name: count for (name, *_), count in zip(SHOP_TABLES, row, strict=True)}


@transaction.atomic
def metrics_generate_platform(*, date_from: date, date_to: date) -> dict:
    """Compute PlatformMetric for the UTC days [date_from, date_to] in one statement.

    Idempotent (rows rewritten only when a value changed). Returns {"platform": rows written}.
    """
    statement = platform_statement()
    with connection.cursor() as cursor:
        cursor.execute(statement, platform_params(date_from=date_from, date_to=date_to))
        return {"platform": cursor.fetchone()[0]}


def metrics_generate_daily(*, now: datetime | None = None) -> dict:
    """The nightly run: every shop's last three closed local days, the platform's last three
    UTC days. Each part commits on its own; both are idempotent, so a retry is harmless."""
    now = now or timezone.now()
    counts = metrics_generate_shops(now=now)
    today = now.astimezone(UTC).date()
    counts.update(
        metrics_generate_platform(
            date_from=today - timedelta(days=CLOSED_DAYS), date_to=today - timedelta(days=1)
        )
    )
    return counts


BACKFILL_CHUNK_DAYS = 31  # one transaction per month of days


def metrics_first_data_day() -> date | None:
    """The UTC day of the platform's first recorded activity (a user, an order, a payment or a
    job), or None on an empty database. Four indexed MIN() reads."""
    from django.db.models import Min

    from accounts.models import User
    from credits.models import Payment
    from jobs.models import Job
    from shops.models import FormSubmission

    firsts = [
        User.objects.aggregate(first=Min("date_joined"))["first"],
        FormSubmission.objects.aggregate(first=Min("submitted_at"))["first"],
        Payment.objects.aggregate(first=Min("created_at"))["first"],
        Job.objects.aggregate(first=Min("created_at"))["first"],
    ]
    known = [moment for moment in firsts if moment is not None]
    return min(known).astimezone(UTC).date() if known else None


def metrics_backfill_range(*, now: datetime | None = None) -> tuple[date, date] | None:
    """The closed UTC days no stored platform row covers yet: from the day after the newest
    stored one (or, on a fresh install, the day before the first data, so every shop's local
    day is in) to yesterday. None when there is nothing to fill."""
    today = (now or timezone.now()).astimezone(UTC).date()
    yesterday = today - timedelta(days=1)
    newest = PlatformMetric.objects.order_by("-date").values_list("date", flat=True).first()
    if newest is not None:
        start = newest + timedelta(days=1)
    else:
        first = metrics_first_data_day()
        if first is None:
            return None
        start = first - timedelta(days=1)
    return (start, yesterday) if start <= yesterday else None


def metrics_backfill(*, now: datetime | None = None, progress=None) -> dict:
    """Generate the shop and platform metrics of every closed day that has none yet
    (metrics_backfill_range), a month per transaction, so a fresh install, or one whose nightly
    run stopped for a while, shows real figures without anyone running a command. Idempotent:
    once the days are stored, a second run finds nothing to do. `progress(start, end, index,
    total)` is called after each month. Returns rows written per table ({} when nothing to do)."""
    span = metrics_backfill_range(now=now)
    if span is None:
        return {}
    chunks = []
    start, end = span
    while start <= end:
        stop = min(start + timedelta(days=BACKFILL_CHUNK_DAYS - 1), end)
        chunks.append((start, stop))
        start = stop + timedelta(days=1)
    totals: dict[str, int] = {}
    for index, (first, last) in enumerate(chunks, 1):
        counts = metrics_generate_shops(date_from=first, date_to=last)
        counts.update(metrics_generate_platform(date_from=first, date_to=last))
        for key, value in counts.items():
            totals[key] = totals.get(key, 0) + value
        if progress is not None:
            progress(first, last, index, len(chunks))
    logger.info("metrics backfilled", extra={"date_from": span[0], "date_to": span[1], "counts": totals})
    return totals


# --- verification ----------------------------------------------------------------------------


def _diff(
    *, model, select_sql: str, key: list[str], columns: list[str], scope: str, params: dict, limit: int = 50
) -> list[dict]:
    """Rows where the recomputation and the stored table disagree (missing, extra or different)."""
    table = sql.t(model)
    cols = key + columns
    col = {n: f'"{model._meta.get_field(n).column}"' for n in cols}
    head, tail = _split(select_sql)
    stored_cols = ", ".join(f"tgt.{col[n]} AS {n}" for n in cols)
    json_cols = ", ".join(f"'{n}', {n}" for n in cols)
    statement = f"""
WITH {head},
fresh AS (SELECT {tail}),
stored AS (SELECT {stored_cols} FROM {table} tgt WHERE {scope}),
a AS (SELECT 'expected' AS side, * FROM (SELECT {", ".join(cols)} FROM fresh
                                        EXCEPT SELECT {", ".join(cols)} FROM stored) e),
z AS (SELECT 'stored' AS side, * FROM (SELECT {", ".join(cols)} FROM stored
                                      EXCEPT SELECT {", ".join(cols)} FROM fresh) e)
SELECT side, jsonb_build_object({json_cols})::text FROM (SELECT * FROM a UNION ALL SELECT * FROM z) d
 LIMIT {int(limit)}"""
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return [{"table": model._meta.db_table, "side": side, "row": row} for side, row in cursor.fetchall()]


def metrics_verify(
    *, date_from: date, date_to: date, shop_ids: list[UUID] | None = None, platform: bool = True
) -> list[dict]:
    """Recompute [date_from, date_to] from the raw orders (and platform tables) and return every
    difference from the stored rows: a row only on one side, or with different values. Read-only.

    Note: platform rows depend on present-day state for shop plans and user tiers (no history is
    kept for them), so verify a platform range soon after generating it."""
    params = _shop_params(shop_ids=shop_ids, date_from=date_from, date_to=date_to, now=None)
    diffs = []
    diffs += _diff(
        model=DailySalesMetric,
        select_sql=sql.sales_rows_sql(),
        key=["shop_id", "date"],
        columns=sql.SALES_COLUMNS,
        scope=_SPARSE_SCOPE,
        params=params,
    )
    diffs += _diff(
        model=CategoryDailyMetric,
        select_sql=sql.category_rows_sql(),
        key=["shop_id", "date", "category"],
        columns=sql.CATEGORY_COLUMNS,
        scope=_SPARSE_SCOPE,
        params=params,
    )
    diffs += _diff(
        model=ProductAnalytics,
        select_sql=sql.product_rows_sql(),
        key=["item_id", "date"],
        columns=sql.PRODUCT_COLUMNS,
        scope=_SPARSE_SCOPE,
        params=params,
    )
    if platform:
        diffs += _diff(
            model=PlatformMetric,
            select_sql=sql.platform_rows_sql(),
            key=["date"],
            columns=sql.PLATFORM_COLUMNS,
            scope="tgt.date BETWEEN %(date_from)s AND %(date_to)s",
            params=platform_params(date_from=date_from, date_to=date_to),
        )
    return diffs
