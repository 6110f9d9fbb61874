"""Stock: every change locks the item row, moves the quantity and writes its history row in the
same transaction. Rows are always locked in primary-key order, so two transactions touching the
same items can only queue behind each other, never deadlock."""

import functools
import logging
from collections.abc import Iterable
from datetime import timedelta
from uuid import UUID

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from config.exceptions import ApplicationError, Conflict
from shops.models import FormSubmissionLine, Item, Shop, StockHistory, StockReason
from shops.services.plans import shop_plan_limit_check
from shops.signals import low_stock_crossed

logger = logging.getLogger(__name__)

MAX_STOCK = 2_000_000_000  # below PostgreSQL's integer limit, so a sum can never overflow into a 500
ITEM_FIELDS = (
    "sku",
    "name",
    "description",
    "kind",
    "category",
    "price",
    "cost",
    "low_stock_threshold",
    "track_stock",
    "is_active",
)


def _insufficient(short: list[dict]) -> Conflict:
    names = ", ".join(
        f"{s['sku']} ({s['name']}): {s['available']} available, {s['requested']} requested" for s in short
    )
    return Conflict(
        f"Insufficient stock for {names}.",
        code="insufficient_stock",
        extra={"items": [{**s, "item_id": str(s["item_id"])} for s in short]},
    )


def _emit_low_stock_after_commit(shop_id: UUID, item_ids: list[UUID]) -> None:
    def send():
        for receiver, result in low_stock_crossed.send_robust(
            sender=Item, shop_id=shop_id, item_ids=item_ids
        ):
            if isinstance(result, Exception):
                logger.error("low_stock_crossed receiver %r failed", receiver, exc_info=result)

    transaction.on_commit(send)


# What orders need from a moved item (the rest stays deferred): fewer columns to send and parse.
_ITEM_ATTNAMES = [
    "id",
    "shop_id",
    "sku",
    "name",
    "price",
    "cost",
    "stock_quantity",
    "low_stock_threshold",
    "track_stock",
    "is_active",
]
_ITEM_RETURNING = ", ".join(f"i.{name}" for name in _ITEM_ATTNAMES)


# One statement moves every item of the change set, checking the floor (and the ceiling, in
# bigint so a huge delta cannot overflow into a 500) per row. Rows that fail a check, belong to
# another shop or are inactive when ordering are simply not returned. Untracked items are
# "updated" to their own value: that still locks them, so prices are read under the lock.
# One statement moves every item of the change set and writes their history rows, so the row
# locks are held for a single round trip plus the commit. Per row it checks the floor (and the
# ceiling, in bigint so a huge delta cannot overflow into a 500); rows that fail, belong to
# another shop or are inactive when ordering are simply not returned (the caller then raises and
# the rollback takes the history rows with it). Untracked items are "updated" to their own value:
# that still locks them, so their prices are read under the lock. The history INSERT sorts the
# moved rows, so every item row is updated before the chain trigger on history reads it.
# The flags are spelled into the text (a handful of fixed variants) and one-item changes skip the
# arrays: fewer parameters to adapt on the hottest path.
@functools.cache
def _move_sql(*, single: bool, require_active: bool, tracked_only: bool) -> str:
    moves = "i.track_stock" if tracked_only else "true"
    source = (
        "(VALUES (%(id)s::uuid, %(delta)s::integer)) AS v(id, delta)"
        if single
        else "unnest(%(ids)s::uuid[], %(deltas)s::integer[]) AS v(id, delta)"
    )
    active = "AND i.is_active" if require_active else ""
    return f"""
    WITH moved AS (
        UPDATE shops_item AS i
        SET stock_quantity = CASE WHEN {moves} THEN i.stock_quantity + v.delta ELSE i.stock_quantity END,
            updated_at = CASE WHEN {moves} THEN now() ELSE i.updated_at END
        FROM {source}
        WHERE i.id = v.id AND i.shop_id = %(shop_id)s {active}
          AND (NOT {moves} OR i.stock_quantity::bigint + v.delta BETWEEN 0 AND {MAX_STOCK})
        RETURNING {moves} AS moves, v.delta, {_ITEM_RETURNING}
    ), history AS (
        INSERT INTO shops_stockhistory (item_id, change, quantity_before, quantity_after, reason,
                                        reference, note, user_id, created_at)
        SELECT id, delta, stock_quantity - delta, stock_quantity, %(reason)s, %(reference)s, %(note)s,
               %(user_id)s, now()
        FROM moved WHERE moves ORDER BY id
    )
    SELECT * FROM moved
    """


_LOCK_SQL = "SELECT id FROM shops_item WHERE id = ANY(%s::uuid[]) ORDER BY id FOR UPDATE"


def _refusal(cursor, *, shop_id, changes, missing, require_active, tracked_only) -> ApplicationError:
    """Explain why the move did not cover every item (called only on the failure path)."""
    cursor.execute(
        "SELECT id, sku, name, stock_quantity, is_active, track_stock FROM shops_item "
        "WHERE shop_id = %s AND id = ANY(%s::uuid[])",
        [shop_id, sorted(missing)],
    )
    found = {row[0]: row for row in cursor.fetchall()}
    unknown, short, too_big = [], [], []
    for pk in sorted(missing):
        row = found.get(pk)
        if row is None or (require_active and not row[4]):
            unknown.append(str(pk))
            continue
        _, sku, name, stock, _, tracked = row
        after = stock + changes[pk]
        if after < 0:
            short.append(
                {"item_id": pk, "sku": sku, "name": name, "available": stock, "requested": -changes[pk]}
            )
        elif after > MAX_STOCK:
            too_big.append(sku)
    if unknown:
        return ApplicationError(
            "Unknown or unavailable items.",
            code="validation_error",
            fields={"items": [f"Unknown or unavailable item: {pk}" for pk in unknown]},
        )
    if short or not too_big:
        # Nothing found short now means a concurrent restock landed between the refused UPDATE
        # and this read: the refusal still stands, reported with the stock as it is now.
        return _insufficient(
            short
            or [
                {
                    "item_id": pk,
                    "sku": found[pk][1],
                    "name": found[pk][2],
                    "available": found[pk][3],
                    "requested": -changes[pk],
                }
                for pk in sorted(missing)
            ]
        )
    return ApplicationError(
        "The stock would exceed the maximum.",
        code="validation_error",
        fields={"change": [f"Stock of {sku} may not exceed {MAX_STOCK}." for sku in too_big]},
    )


def _apply_changes(
    *,
    shop_id: UUID,
    changes: dict[UUID, int],
    reason: str,
    reference: str = "",
    note: str = "",
    user=None,
    require_active: bool = False,
    tracked_only: bool = False,
) -> dict[UUID, Item]:
    """Lock the items (pk order), refuse if any would go negative, then move them all.

    `changes` maps item id → signed, non-zero delta (already summed per item). Returns every
    locked item, with its new stock, keyed by id. Must run inside a transaction: on refusal some
    rows may already be updated, and the caller's rollback undoes them.

    Written in SQL because it is the hot path of every order: one statement (UPDATE … RETURNING
    feeding the history INSERT) through Django's own cursor.
    """
    ids = sorted(changes)
    with connection.cursor() as cursor:
        if len(ids) > 1:
            # Several rows: take their locks in primary-key order first, so two orders over the
            # same items queue instead of deadlocking. (One row cannot deadlock with itself.)
            cursor.execute(_LOCK_SQL, [ids])
        params = {
            "shop_id": shop_id,
            "reason": reason,
            "reference": reference,
            "note": note,
            "user_id": getattr(user, "pk", None),
        }
        if len(ids) == 1:
            params["id"], params["delta"] = ids[0], changes[ids[0]]
        else:
            params["ids"], params["deltas"] = ids, [changes[pk] for pk in ids]
        sql = _move_sql(single=len(ids) == 1, require_active=require_active, tracked_only=tracked_only)
        cursor.execute(sql, params)
        rows = cursor.fetchall()
        if len(rows) != len(ids):
            raise _refusal(
                cursor,
                shop_id=shop_id,
                changes=changes,
                missing=set(ids) - {row[2] for row in rows},
                require_active=require_active,
                tracked_only=tracked_only,
            )
    items: dict[UUID, Item] = {}
    crossed = []
    for moves, delta, *values in rows:
        item = Item.from_db(connection.alias, _ITEM_ATTNAMES, values)
        items[item.pk] = item
        before, after = item.stock_quantity - delta, item.stock_quantity
        if moves and item.track_stock and before > item.low_stock_threshold >= after:
            crossed.append(item.pk)
    if crossed:
        _emit_low_stock_after_commit(shop_id, crossed)
    return items


@transaction.atomic
def stock_update(
    *,
    item: Item,
    change: int,
    reason: str = StockReason.MANUAL,
    user=None,
    note: str = "",
    reference: str = "",
) -> tuple[Item, StockHistory]:
    """Move one item's stock by `change` (±) and record it.

    Locks: the item row. Writes: the new stock_quantity and one StockHistory row (before, after,
    reason, user). Raises Conflict(insufficient_stock, 409) if the stock would go below zero,
    ApplicationError(validation_error) for a zero change. Emits `low_stock_crossed` after commit
    when the change takes the item to or below its threshold.
    """
    if not isinstance(change, int) or change == 0:
        raise ApplicationError(
            "The change must be a non-zero integer.",
            code="validation_error",
            fields={"change": ["Must be a non-zero integer."]},
        )
    items = _apply_changes(
        shop_id=item.shop_id,
        changes={item.pk: change},
        reason=reason,
        reference=reference,
        note=note,
        user=user,
    )
    # The move returns only the columns orders need; the API shows the whole item.
    fresh = Item.objects.get(pk=items[item.pk].pk)
    entry = StockHistory.objects.filter(item=fresh).order_by("-id").first()
    return fresh, entry


update_stock = stock_update


@transaction.atomic
def order_process_stock_changes(
    *,
    shop_id: UUID,
    lines: Iterable[tuple[UUID, int]],
    reference: str,
    restock: bool = False,
    user=None,
    require_active: bool = True,
) -> dict[UUID, Item]:
    """Deduct (or, with restock=True, give back) the stock of an order's lines: all or none.

    Lines of the same item are summed first. Locks: every item row of the order, in primary-key
    order, so concurrent orders over the same items never deadlock. When ordering, items that do
    not track stock are locked (their price is read under the lock) but not moved; a restock moves
    every line it is given (the caller passes only lines whose stock was taken). Raises Conflict
    (insufficient_stock, 409) naming every short item — nothing is changed then — or
    ApplicationError(validation_error) for items not in this shop (or inactive, when ordering).
    Returns the locked items by id, stock already updated.
    """
    summed: dict[UUID, int] = {}
    for item_id, quantity in lines:
        if quantity <= 0:
            raise ApplicationError(
                "Quantities must be positive.",
                code="validation_error",
                fields={"quantity": ["Must be a positive integer."]},
            )
        summed[item_id] = summed.get(item_id, 0) + quantity
    if not summed:
        raise ApplicationError(
            "An order needs at least one line.",
            code="validation_error",
            fields={"lines": ["At least one line is required."]},
        )
    sign = 1 if restock else -1
    return _apply_changes(
        shop_id=shop_id,
        changes={pk: sign * qty for pk, qty in summed.items()},
        reason=StockReason.CANCELLATION if restock else StockReason.ORDER,
        reference=reference,
        user=user,
        require_active=require_active and not restock,
        # A restock gives back exactly what the order took (its lines say which), even if the
        # item stopped tracking stock since.
        tracked_only=not restock,
    )


process_order_stock_changes = order_process_stock_changes


@transaction.atomic
def item_create(*, shop: Shop, user=None, stock_quantity: int = 0, **fields) -> Item:
    """Create an item; an initial stock is recorded as its first history row (reason `manual`).

    Raises ApplicationError(validation_error) when the sku is already used in this shop, and
    PlanLimit (403 `plan_limit`) when the shop's plan allows no more items (counted under the
    shop-row lock, so concurrent creations never pass the limit).
    """
    shop_plan_limit_check(shop_id=shop.pk, limit="max_items")
    item = Item(
        shop=shop, stock_quantity=stock_quantity, **{k: v for k, v in fields.items() if k in ITEM_FIELDS}
    )
    try:
        with transaction.atomic():
            item.save()
    except IntegrityError:
        raise _sku_taken() from None
    if stock_quantity:
        StockHistory.objects.create(
            item=item,
            change=stock_quantity,
            quantity_before=0,
            quantity_after=stock_quantity,
            reason=StockReason.MANUAL,
            reference="initial stock",
            user=user,
        )
    return item


def _sku_taken() -> ApplicationError:
    return ApplicationError(
        "Invalid input.",
        code="validation_error",
        fields={"sku": ["An item with this sku already exists in this shop."]},
    )


@transaction.atomic
def item_update(*, item: Item, **fields) -> Item:
    """Change an item's catalogue fields. The stock never changes here (only `stock_update`)."""
    names = [k for k in fields if k in ITEM_FIELDS]
    for name in names:
        setattr(item, name, fields[name])
    if names:
        try:
            with transaction.atomic():
                item.save(update_fields=[*names, "updated_at"])
        except IntegrityError:
            raise _sku_taken() from None
    return item


@transaction.atomic
def item_delete(*, item: Item) -> None:
    """Delete an item and its history. Raises Conflict(item_in_use) when orders reference it:
    deactivate it instead, so order lines keep pointing at what was sold."""
    if FormSubmissionLine.objects.filter(item=item).exists():
        raise Conflict("This item appears in orders; deactivate it instead.", code="item_in_use")
    item.delete()


@transaction.atomic
def stock_history_cleanup(*, older_than_days: int = 365, now=None) -> int:
    """Delete stock history older than the cutoff without breaking the chain invariant.

    Per item, only a prefix of its chain is deleted (every row up to its newest row older than
    the cutoff) and its newest row is always kept. The remaining rows therefore still chain
    pairwise; the oldest kept row becomes the start of the chain (its quantity_before is the
    opening balance) and the newest still equals stock_quantity. Rows written while this runs
    have larger ids than anything it deletes. Safe to run twice. Returns the number deleted.
    """
    cutoff = (now or timezone.now()) - timedelta(days=older_than_days)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH bounds AS (
                SELECT item_id,
                       MAX(id) FILTER (WHERE created_at < %s) AS old_upto,
                       MAX(id) AS newest
                FROM shops_stockhistory GROUP BY item_id
            )
            DELETE FROM shops_stockhistory h USING bounds b
            WHERE h.item_id = b.item_id AND b.old_upto IS NOT NULL
              AND h.id <= b.old_upto AND h.id < b.newest
            """,
            [cutoff],
        )
        deleted = cursor.rowcount
    logger.info("stock history cleanup: %s rows older than %s deleted", deleted, cutoff.isoformat())
    return deleted
