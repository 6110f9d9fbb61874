"""The set-based SQL behind every metric (definitions: docs/METRICS.md).

Table and column names come from `_meta` and statuses from the enums, never literals, so a
renamed table or status cannot silently break a figure. Each `*_rows_sql()` is a SELECT that
computes the rows; the generators wrap it in `INSERT … ON CONFLICT DO UPDATE … WHERE IS DISTINCT
FROM` (a row is rewritten only when a value changed: generating twice changes nothing), and
`analytics_verify` compares the same SELECT with the stored rows.

Parameters (psycopg named style):
- shop sales: `shop_ids` (uuid[] or NULL = every shop), `date_from`/`date_to` (NULL = the
  shop's last `days` closed local days at `now`), `days`, `now`, `cancelled`.
- platform: `date_from`, `date_to` (UTC dates) and the enum values named in `PLATFORM_PARAMS`.
"""

from accounts.models import Subscription, User
from credits.models import CreditTransaction, Payment
from jobs.models import Job
from jobs.states import JobStatus
from shops.models import (
    Conversation,
    FormSubmission,
    FormSubmissionLine,
    Item,
    Message,
    OrderStatus,
    Shop,
    StockHistory,
)


def t(model) -> str:
    return f'"{model._meta.db_table}"'


def c(model, field: str) -> str:
    return f'"{model._meta.get_field(field).column}"'


SHOP, ORDER, LINE, ITEM, HISTORY = t(Shop), t(FormSubmission), t(FormSubmissionLine), t(Item), t(StockHistory)

# Every shop in scope with the local-day range to compute and its UTC bounds.
_BOUNDS = f"""
s AS (
    SELECT sh.id, sh.{c(Shop, "timezone")} AS tz,
           COALESCE(%(date_from)s::date,
                    (%(now)s::timestamptz AT TIME ZONE sh.{c(Shop, "timezone")})::date
                    - %(days)s::int) AS d_from,
           COALESCE(%(date_to)s::date,
                    (%(now)s::timestamptz AT TIME ZONE sh.{c(Shop, "timezone")})::date - 1) AS d_to
      FROM {SHOP} sh
     WHERE %(shop_ids)s::uuid[] IS NULL OR sh.id = ANY(%(shop_ids)s::uuid[])
),
b AS (
    SELECT s.id AS shop_id, s.tz, s.d_from, s.d_to,
           s.d_from::timestamp AT TIME ZONE s.tz AS lo,
           (s.d_to + 1)::timestamp AT TIME ZONE s.tz AS hi
      FROM s
)"""

_O_SHOP, _O_AT, _O_STATUS = (
    c(FormSubmission, "shop"),
    c(FormSubmission, "submitted_at"),
    c(FormSubmission, "status"),
)
_O_CANCELLED = c(FormSubmission, "cancelled_at")
_L_ORDER, _L_ITEM, _L_QTY = (
    c(FormSubmissionLine, "submission"),
    c(FormSubmissionLine, "item"),
    c(FormSubmissionLine, "quantity"),
)
_L_TOTAL, _L_COST = c(FormSubmissionLine, "line_total"), c(FormSubmissionLine, "unit_cost")

# Every line of every order placed (+1) or cancelled (−1) within a shop's range, on its local day.
_MOVES = f"""
moves AS (
    SELECT o.{_O_SHOP} AS shop_id, b.tz, (o.{_O_AT} AT TIME ZONE b.tz)::date AS date, o.id AS order_id,
           l.{_L_ITEM} AS item_id, 1 AS sign, l.{_L_QTY} AS qty, l.{_L_TOTAL} AS revenue,
           l.{_L_COST} * l.{_L_QTY} AS cost
      FROM b JOIN {ORDER} o ON o.{_O_SHOP} = b.shop_id AND o.{_O_AT} >= b.lo AND o.{_O_AT} < b.hi
      JOIN {LINE} l ON l.{_L_ORDER} = o.id
    UNION ALL
    SELECT o.{_O_SHOP}, b.tz, (o.{_O_CANCELLED} AT TIME ZONE b.tz)::date, o.id,
           l.{_L_ITEM}, -1, l.{_L_QTY}, l.{_L_TOTAL}, l.{_L_COST} * l.{_L_QTY}
      FROM b JOIN {ORDER} o ON o.{_O_SHOP} = b.shop_id AND o.{_O_STATUS} = %(cancelled)s
                          AND o.{_O_CANCELLED} >= b.lo AND o.{_O_CANCELLED} < b.hi
      JOIN {LINE} l ON l.{_L_ORDER} = o.id
)"""

SALES_COLUMNS = [
    "orders",
    "items_sold",
    "gross_revenue",
    "cancelled_orders",
    "cancelled_revenue",
    "net_revenue",
    "cost",
    "gross_profit",
    "avg_order_value",
    "unique_customers",
]


SHOP_COMMON = f"{_BOUNDS[1:]},\n{_MOVES[1:]}"


def _compose(parts: tuple[str, str]) -> str:
    extra, final = parts
    return f"WITH {SHOP_COMMON}{',' + extra if extra else ''}\nSELECT {final}"


def sales_parts() -> tuple[str, str]:
    """(extra CTEs after SHOP_COMMON, the final SELECT's body) of the daily sales rows."""
    phone, email = c(FormSubmission, "customer_phone"), c(FormSubmission, "customer_email")
    extra = f"""
placed AS (
    SELECT o.{_O_SHOP} AS shop_id, (o.{_O_AT} AT TIME ZONE b.tz)::date AS date,
           COUNT(*) AS orders,
           COUNT(DISTINCT COALESCE(NULLIF(o.{phone}, ''), NULLIF(lower(o.{email}), ''))) AS customers
      FROM b JOIN {ORDER} o ON o.{_O_SHOP} = b.shop_id AND o.{_O_AT} >= b.lo AND o.{_O_AT} < b.hi
     GROUP BY 1, 2
),
money AS (
    SELECT shop_id, date,
           COALESCE(SUM(qty) FILTER (WHERE sign = 1), 0) AS items,
           COALESCE(SUM(revenue) FILTER (WHERE sign = 1), 0) AS revenue,
           COALESCE(SUM(cost) FILTER (WHERE sign = 1), 0) AS cost,
           COUNT(DISTINCT order_id) FILTER (WHERE sign = -1) AS c_orders,
           COALESCE(SUM(revenue) FILTER (WHERE sign = -1), 0) AS c_revenue,
           COALESCE(SUM(cost) FILTER (WHERE sign = -1), 0) AS c_cost
      FROM moves GROUP BY 1, 2
)"""
    final = """b.shop_id, d::date AS date,
       COALESCE(p.orders, 0)::int AS orders,
       COALESCE(m.items, 0)::int AS items_sold,
       COALESCE(m.revenue, 0)::numeric(14, 2) AS gross_revenue,
       COALESCE(m.c_orders, 0)::int AS cancelled_orders,
       COALESCE(m.c_revenue, 0)::numeric(14, 2) AS cancelled_revenue,
       (COALESCE(m.revenue, 0) - COALESCE(m.c_revenue, 0))::numeric(14, 2) AS net_revenue,
       (COALESCE(m.cost, 0) - COALESCE(m.c_cost, 0))::numeric(14, 2) AS cost,
       (COALESCE(m.revenue, 0) - COALESCE(m.c_revenue, 0) - COALESCE(m.cost, 0) + COALESCE(m.c_cost, 0)
       )::numeric(14, 2) AS gross_profit,
       (CASE WHEN COALESCE(p.orders, 0) > 0 THEN COALESCE(m.revenue, 0) / p.orders ELSE 0 END
       )::numeric(14, 2) AS avg_order_value,
       COALESCE(p.customers, 0)::int AS unique_customers
  FROM b CROSS JOIN LATERAL generate_series(b.d_from, b.d_to, interval '1 day') AS d
  LEFT JOIN placed p ON p.shop_id = b.shop_id AND p.date = d::date
  LEFT JOIN money m ON m.shop_id = b.shop_id AND m.date = d::date
"""
    return extra, final


def sales_rows_sql() -> str:
    """(shop_id, date, *SALES_COLUMNS): one row per shop and local day of its range."""
    return _compose(sales_parts())


CATEGORY_COLUMNS = ["items_sold", "revenue", "cost", "profit"]


def category_parts() -> tuple[str, str]:
    final = f"""m.shop_id, m.date, i.{c(Item, "category")} AS category,
       SUM(m.sign * m.qty)::int AS items_sold,
       SUM(m.sign * m.revenue)::numeric(14, 2) AS revenue,
       SUM(m.sign * m.cost)::numeric(14, 2) AS cost,
       SUM(m.sign * (m.revenue - m.cost))::numeric(14, 2) AS profit
  FROM moves m JOIN {ITEM} i ON i.id = m.item_id
 GROUP BY 1, 2, 3
"""
    return "", final


def category_rows_sql() -> str:
    """(shop_id, date, category, *CATEGORY_COLUMNS): net of the day's cancellations."""
    return _compose(category_parts())


PRODUCT_COLUMNS = [
    "shop_id",
    "orders",
    "units_sold",
    "revenue",
    "cost",
    "profit",
    "margin_pct",
    "stock_end",
    "sell_through_pct",
]


def product_parts() -> tuple[str, str]:
    h_item, h_at, h_after, h_before = (
        c(StockHistory, "item"),
        c(StockHistory, "created_at"),
        c(StockHistory, "quantity_after"),
        c(StockHistory, "quantity_before"),
    )
    extra = f"""
g AS (
    SELECT item_id, date, shop_id, tz,
           SUM(sign)::int AS orders, SUM(sign * qty)::int AS units,
           SUM(sign * revenue) AS revenue, SUM(sign * cost) AS cost
      FROM moves GROUP BY item_id, date, shop_id, tz
),
pr AS (
    SELECT g.item_id, g.date, g.shop_id, g.orders, g.units, g.revenue, g.cost,
           CASE WHEN i.{c(Item, "track_stock")}
                THEN COALESCE(last.{h_after}, nxt.{h_before}, i.{c(Item, "stock_quantity")}) END AS stock_end
      FROM g JOIN {ITEM} i ON i.id = g.item_id
      LEFT JOIN LATERAL (
          SELECT h.{h_after} FROM {HISTORY} h
           WHERE h.{h_item} = g.item_id AND h.{h_at} < (g.date + 1)::timestamp AT TIME ZONE g.tz
           ORDER BY h.id DESC LIMIT 1) last ON i.{c(Item, "track_stock")}
      LEFT JOIN LATERAL (
          SELECT h.{h_before} FROM {HISTORY} h
           WHERE h.{h_item} = g.item_id AND h.{h_at} >= (g.date + 1)::timestamp AT TIME ZONE g.tz
           ORDER BY h.id ASC LIMIT 1) nxt ON i.{c(Item, "track_stock")} AND last.{h_after} IS NULL
)"""
    final = """item_id, date, shop_id, orders, units AS units_sold,
       revenue::numeric(14, 2) AS revenue, cost::numeric(14, 2) AS cost,
       (revenue - cost)::numeric(14, 2) AS profit,
       CASE WHEN revenue > 0 THEN ((revenue - cost) * 100 / revenue)::numeric(9, 2) END AS margin_pct,
       stock_end,
       CASE WHEN GREATEST(units, 0) + stock_end > 0
            THEN (GREATEST(units, 0) * 100.0 / (GREATEST(units, 0) + stock_end))::numeric(9, 2) END
           AS sell_through_pct
  FROM pr
"""
    return extra, final


def product_rows_sql() -> str:
    """(item_id, date, *PRODUCT_COLUMNS): net of the day's cancellations, stock at the day's end."""
    return _compose(product_parts())


PLATFORM_COLUMNS = [
    "gmv",
    "orders",
    "credit_revenue",
    "credits_purchased",
    "credits_consumed",
    "mrr",
    "arr",
    "mrr_users",
    "mrr_shops",
    "new_users",
    "active_users",
    "active_shops",
    "plan_distribution",
    "churned_subscriptions",
    "churn_rate",
    "jobs_created",
    "jobs_completed",
    "jobs_failed",
    "conversations",
    "messages",
    "ai_messages",
    "credit_revenue_by_currency",
    "mrr_by_currency",
]

PLATFORM_PARAMS = {
    "o_cancelled": OrderStatus.CANCELLED,
    "pay_done": [Payment.Status.COMPLETED, Payment.Status.REFUNDED],
    "tx_purchase": CreditTransaction.Type.PURCHASE,
    "tx_usage": CreditTransaction.Type.USAGE,
    "sub_cancelled": Subscription.Status.CANCELLED,
    "sub_expired": Subscription.Status.EXPIRED,
    "sub_yearly": Subscription.BillingCycle.YEARLY,
    "shop_yearly": Shop.BillingCycle.YEARLY,
    "shop_free": Shop.Plan.FREE,
    "shop_paying": [Shop.PlanStatus.ACTIVE, Shop.PlanStatus.PAST_DUE],
    "shop_plans": list(Shop.Plan.values),
    "user_tiers": [value for value, _ in User._meta.get_field("tier").choices],
    "job_completed": JobStatus.COMPLETED,
    "job_failed": JobStatus.FAILED,
    "msg_ai": Message.Sender.AI,
}


def _sub_active_at(at: str, *, any_currency: bool = False) -> str:
    """A subscription was active at instant `at` (history rebuilt from its dates); in the platform
    currency unless `any_currency`."""
    sub = "sub"
    currency = "" if any_currency else f" AND {sub}.{c(Subscription, 'currency')} = %(platform_currency)s"
    return (
        f"({sub}.{c(Subscription, 'start_date')} < {at} AND {sub}.{c(Subscription, 'end_date')} >= {at}"
        f" AND ({sub}.{c(Subscription, 'cancelled_at')} >= {at}"
        f" OR ({sub}.{c(Subscription, 'cancelled_at')} IS NULL"
        f" AND {sub}.{c(Subscription, 'status')} <> %(sub_cancelled)s)){currency})"
    )


def platform_rows_sql() -> str:
    """(date, *PLATFORM_COLUMNS): one row per UTC day of [date_from, date_to]."""
    U, SUB, PAY, TX, JOB = t(User), t(Subscription), t(Payment), t(CreditTransaction), t(Job)
    CONV, MSG = t(Conversation), t(Message)
    sub_amount = (
        f"CASE WHEN sub.{c(Subscription, 'billing_cycle')} = %(sub_yearly)s"
        f" THEN sub.{c(Subscription, 'amount')} / 12 ELSE sub.{c(Subscription, 'amount')} END"
    )
    shop_amount = (
        f"CASE WHEN sh.{c(Shop, 'billing_cycle')} = %(shop_yearly)s"
        f" THEN sh.{c(Shop, 'plan_price')} / 12 ELSE sh.{c(Shop, 'plan_price')} END"
    )
    job_at, job_done, job_status = c(Job, "created_at"), c(Job, "completed_at"), c(Job, "status")
    return f"""
WITH days AS (
    SELECT d::date AS date, d::date::timestamp AT TIME ZONE 'UTC' AS lo,
           (d::date + 1)::timestamp AT TIME ZONE 'UTC' AS hi
      FROM generate_series(%(date_from)s::date, %(date_to)s::date, interval '1 day') AS d
),
x AS (
SELECT days.date,
  (SELECT COALESCE(jsonb_object_agg(cur, amount::text), '{{}}'::jsonb) FROM (
      SELECT o.{c(FormSubmission, "currency")} AS cur, SUM(l.{_L_TOTAL})::numeric(14, 2) AS amount
        FROM {ORDER} o JOIN {LINE} l ON l.{_L_ORDER} = o.id
       WHERE o.{_O_AT} >= days.lo AND o.{_O_AT} < days.hi GROUP BY 1) gm) AS gmv,
  (SELECT COUNT(*) FROM {ORDER} o WHERE o.{_O_AT} >= days.lo AND o.{_O_AT} < days.hi)::int AS orders,
  (SELECT COALESCE(SUM(p.{c(Payment, "amount")}), 0) FROM {PAY} p
    WHERE p.{c(Payment, "completed_at")} >= days.lo AND p.{c(Payment, "completed_at")} < days.hi
      AND p.{c(Payment, "status")} = ANY(%(pay_done)s)
      AND p.{c(Payment, "package")} IS NOT NULL  -- plan payments are subscription revenue (mrr)
      AND p.{c(Payment, "currency")} = %(platform_currency)s)::numeric(14, 2) AS credit_revenue,
  (SELECT COALESCE(jsonb_object_agg(cur, amount::text), '{{}}'::jsonb) FROM (
      SELECT p.{c(Payment, "currency")} AS cur, SUM(p.{c(Payment, "amount")})::numeric(14, 2) AS amount
        FROM {PAY} p
       WHERE p.{c(Payment, "completed_at")} >= days.lo AND p.{c(Payment, "completed_at")} < days.hi
         AND p.{c(Payment, "status")} = ANY(%(pay_done)s) AND p.{c(Payment, "package")} IS NOT NULL
       GROUP BY 1) cr) AS credit_revenue_by_currency,
  (SELECT COALESCE(jsonb_object_agg(cur, amount::text), '{{}}'::jsonb) FROM (
      SELECT cur, SUM(amount)::numeric(14, 2) AS amount FROM (
          SELECT sub.{c(Subscription, "currency")} AS cur, {sub_amount} AS amount
            FROM {SUB} sub WHERE {_sub_active_at("days.hi", any_currency=True)}
          UNION ALL
          SELECT sh.{c(Shop, "currency")}, {shop_amount} FROM {SHOP} sh
           WHERE sh.created_at < days.hi AND sh.{c(Shop, "plan")} <> %(shop_free)s
             AND sh.{c(Shop, "plan_status")} = ANY(%(shop_paying)s)) plans
       GROUP BY 1) mm) AS mrr_by_currency,
  (SELECT COALESCE(SUM(x.{c(CreditTransaction, "amount")}), 0) FROM {TX} x
    WHERE x.{c(CreditTransaction, "type")} = %(tx_purchase)s
      AND x.created_at >= days.lo AND x.created_at < days.hi)::bigint AS credits_purchased,
  (SELECT COALESCE(-SUM(x.{c(CreditTransaction, "amount")}), 0) FROM {TX} x
    WHERE x.{c(CreditTransaction, "type")} = %(tx_usage)s
      AND x.created_at >= days.lo AND x.created_at < days.hi)::bigint AS credits_consumed,
  (SELECT COALESCE(SUM({sub_amount}), 0) FROM {SUB} sub WHERE {_sub_active_at("days.hi")}
  )::numeric(14, 2) AS mrr_users,
  (SELECT COALESCE(SUM({shop_amount}), 0) FROM {SHOP} sh
    WHERE sh.created_at < days.hi AND sh.{c(Shop, "plan")} <> %(shop_free)s
      AND sh.{c(Shop, "plan_status")} = ANY(%(shop_paying)s)
      AND sh.{c(Shop, "currency")} = %(platform_currency)s)::numeric(14, 2) AS mrr_shops,
  (SELECT COUNT(*) FROM {U} u WHERE u.{c(User, "date_joined")} >= days.lo
      AND u.{c(User, "date_joined")} < days.hi)::int AS new_users,
  (SELECT COUNT(*) FROM (
      SELECT u.id FROM {U} u
       WHERE u.{c(User, "last_login")} >= days.lo AND u.{c(User, "last_login")} < days.hi
      UNION
      SELECT j.{c(Job, "user")} FROM {JOB} j WHERE j.{job_at} >= days.lo AND j.{job_at} < days.hi) a
  )::int AS active_users,
  (SELECT COUNT(DISTINCT o.{_O_SHOP}) FROM {ORDER} o
    WHERE o.{_O_AT} >= days.hi - interval '30 days' AND o.{_O_AT} < days.hi)::int AS active_shops,
  jsonb_build_object(
    'users', (SELECT jsonb_object_agg(k, COALESCE(n, 0)) FROM unnest(%(user_tiers)s::text[]) k
                LEFT JOIN (SELECT u.{c(User, "tier")} AS tier, COUNT(*) AS n FROM {U} u
                            WHERE u.{c(User, "date_joined")} < days.hi
                              AND (u.{c(User, "deleted_at")} IS NULL OR u.{c(User, "deleted_at")} >= days.hi)
                            GROUP BY 1) ut ON ut.tier = k),
    'shops', (SELECT jsonb_object_agg(k, COALESCE(n, 0)) FROM unnest(%(shop_plans)s::text[]) k
                LEFT JOIN (SELECT sh.{c(Shop, "plan")} AS plan, COUNT(*) AS n FROM {SHOP} sh
                            WHERE sh.created_at < days.hi GROUP BY 1) sp ON sp.plan = k)
  ) AS plan_distribution,
  (SELECT COUNT(*) FROM {SUB} sub WHERE
      (sub.{c(Subscription, "status")} = %(sub_cancelled)s
       AND sub.{c(Subscription, "cancelled_at")} >= days.lo
       AND sub.{c(Subscription, "cancelled_at")} < days.hi)
   OR (sub.{c(Subscription, "status")} = %(sub_expired)s AND sub.{c(Subscription, "cancelled_at")} IS NULL
       AND sub.{c(Subscription, "end_date")} >= days.lo AND sub.{c(Subscription, "end_date")} < days.hi)
  )::int AS churned_subscriptions,
  (SELECT COUNT(*) FROM {SUB} sub WHERE
      (sub.{c(Subscription, "status")} = %(sub_cancelled)s
       AND sub.{c(Subscription, "cancelled_at")} >= days.hi - interval '30 days'
       AND sub.{c(Subscription, "cancelled_at")} < days.hi)
   OR (sub.{c(Subscription, "status")} = %(sub_expired)s AND sub.{c(Subscription, "cancelled_at")} IS NULL
       AND sub.{c(Subscription, "end_date")} >= days.hi - interval '30 days'
       AND sub.{c(Subscription, "end_date")} < days.hi)) AS churned_30,
  (SELECT COUNT(*) FROM {SUB} sub WHERE {_sub_active_at("(days.hi - interval '30 days')")}) AS active_30,
  (SELECT COUNT(*) FROM {JOB} j WHERE j.{job_at} >= days.lo AND j.{job_at} < days.hi)::int AS jobs_created,
  (SELECT COUNT(*) FROM {JOB} j WHERE j.{job_status} = %(job_completed)s
      AND j.{job_done} >= days.lo AND j.{job_done} < days.hi)::int AS jobs_completed,
  (SELECT COUNT(*) FROM {JOB} j WHERE j.{job_status} = %(job_failed)s
      AND j.{job_done} >= days.lo AND j.{job_done} < days.hi)::int AS jobs_failed,
  (SELECT COUNT(*) FROM {CONV} cv WHERE cv.created_at >= days.lo AND cv.created_at < days.hi)::int
      AS conversations,
  (SELECT COUNT(*) FROM {MSG} m WHERE m.created_at >= days.lo AND m.created_at < days.hi)::int AS messages,
  (SELECT COUNT(*) FROM {MSG} m WHERE m.{c(Message, "sender")} = %(msg_ai)s
      AND m.created_at >= days.lo AND m.created_at < days.hi)::int AS ai_messages
  FROM days
)
SELECT date, gmv, orders, credit_revenue, credits_purchased, credits_consumed,
       (mrr_users + mrr_shops)::numeric(14, 2) AS mrr, ((mrr_users + mrr_shops) * 12)::numeric(14, 2) AS arr,
       mrr_users, mrr_shops, new_users, active_users, active_shops, plan_distribution, churned_subscriptions,
       CASE WHEN active_30 > 0 THEN (churned_30 * 100.0 / active_30)::numeric(9, 2) END AS churn_rate,
       jobs_created, jobs_completed, jobs_failed, conversations, messages, ai_messages,
       credit_revenue_by_currency, mrr_by_currency
  FROM x
"""
