"""Recovery snapshots of one shop's catalogue.

A snapshot is a canonical JSON document (sorted keys, compact) of the shop's items with their
stock, forms, payment methods, keyword replies and saved replies; its sha256 and size are of
that document. Restoring one puts the catalogue back: rows are matched by id, missing ones are
recreated with their old id, rows added since are deactivated (or, for saved replies, deleted:
nothing references them). Stock never changes by a plain write: each difference goes through
the shops stock service as an `adjustment` whose reference names the snapshot, so the history
chain holds.
"""

import hashlib
import json
import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone

from backups.models import RecoverySnapshot
from config.exceptions import ApplicationError, Conflict
from shops.models import Form, Item, KeywordReply, PaymentMethod, SavedReply, Shop, StockReason
from shops.services.stock import stock_update

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
# section → (model, what rows added since the snapshot become on restore)
SECTIONS = {
    "items": (Item, "deactivate"),
    "forms": (Form, "deactivate"),
    "payment_methods": (PaymentMethod, "deactivate"),
    "keyword_replies": (KeywordReply, "deactivate"),
    "saved_replies": (SavedReply, "delete"),
}
_SKIP = {"shop", "created_at", "updated_at"}


def _fields(model) -> list:
    return [f for f in model._meta.concrete_fields if f.name not in _SKIP]


def _canonical(document: dict) -> bytes:
    return json.dumps(document, cls=DjangoJSONEncoder, sort_keys=True, separators=(",", ":")).encode()


def snapshot_document(*, shop: Shop) -> dict:
    """The shop's catalogue as a JSON-able dict (ids, values as JSON-safe strings/numbers)."""
    document = {"version": FORMAT_VERSION, "shop_id": str(shop.pk), "taken_at": timezone.now().isoformat()}
    for section, (model, _) in SECTIONS.items():
        names = [f.attname for f in _fields(model)]
        rows = model.objects.filter(shop=shop).order_by("pk").values(*names)
        document[section] = json.loads(json.dumps(list(rows), cls=DjangoJSONEncoder))
    return document


@transaction.atomic
def snapshot_create(*, shop: Shop, created_by=None, note: str = "") -> RecoverySnapshot:
    """Take a snapshot of `shop`'s catalogue now; it expires after SNAPSHOT_KEEP_DAYS (90) days.

    Reads the catalogue in one transaction (one consistent view). Never changes the catalogue.
    """
    document = snapshot_document(shop=shop)
    body = _canonical(document)
    return RecoverySnapshot.objects.create(
        shop=shop,
        document=document,
        sha256=hashlib.sha256(body).hexdigest(),
        size=len(body),
        created_by=created_by,
        note=note[:300],
        expires_at=timezone.now() + timedelta(days=settings.SNAPSHOT_KEEP_DAYS),
    )


def _values(model, row: dict) -> dict:
    return {f.attname: f.to_python(row[f.attname]) for f in _fields(model) if f.attname in row}


@transaction.atomic
def snapshot_restore(*, snapshot: RecoverySnapshot, user=None, dry_run: bool = False) -> dict:
    """Put the shop's catalogue back as `snapshot` recorded it.

    Locks the shop row first (two restores of one shop queue). Takes a snapshot of the current
    catalogue first (its id is returned as `pre_restore_snapshot`). Stock differences go through
    `stock_update` (row lock, history row, reason `adjustment`, reference `snapshot:<id>`).
    Raises ApplicationError(snapshot_corrupt) when the document no longer matches its sha256,
    Conflict(snapshot_conflict) when a unique sku/slug is now used by another row. Returns what
    changed per section: created, updated, deactivated/deleted, and stock adjustments.

    With `dry_run`, does all of it (checksum, locks, every change, so a conflict is raised as
    the restore would raise it) and rolls it back, the pre-restore snapshot too: the result says
    what a restore would change now, with `pre_restore_snapshot` None.
    """
    if hashlib.sha256(_canonical(snapshot.document)).hexdigest() != snapshot.sha256:
        raise ApplicationError(
            "The snapshot does not match its checksum.", code="snapshot_corrupt", status_code=409
        )
    shop = Shop.objects.select_for_update().get(pk=snapshot.shop_id)
    before = snapshot_create(shop=shop, created_by=user, note=f"automatic, before restoring {snapshot.pk}")
    reference = f"snapshot:{snapshot.pk}"
    changes: dict = {}
    try:
        with transaction.atomic():
            for section, (model, leftover) in SECTIONS.items():
                changes[section] = _restore_section(shop, model, snapshot.document.get(section, []), leftover)
            changes["stock"] = _restore_stock(shop, snapshot.document.get("items", []), user, reference)
    except IntegrityError as exc:
        raise Conflict(
            f"The snapshot conflicts with the current catalogue: {exc}", code="snapshot_conflict"
        ) from None
    if dry_run:
        transaction.set_rollback(True)
        return {"snapshot": str(snapshot.pk), "pre_restore_snapshot": None, "changes": changes}
    snapshot.restored_at = timezone.now()
    snapshot.save(update_fields=["restored_at", "updated_at"])
    logger.info("snapshot %s restored into shop %s: %s", snapshot.pk, shop.pk, changes)
    return {"snapshot": str(snapshot.pk), "pre_restore_snapshot": str(before.pk), "changes": changes}


def _restore_section(shop: Shop, model, rows: list[dict], leftover: str) -> dict:
    wanted = {str(row["id"]): _values(model, row) for row in rows}
    current = {str(obj.pk): obj for obj in model.objects.select_for_update().filter(shop=shop).order_by("pk")}
    result = {"created": 0, "updated": 0, "deactivated" if leftover == "deactivate" else "deleted": 0}
    # Rows added since the snapshot go first, so a sku/slug they took can be given back.
    for pk, obj in current.items():
        if pk in wanted:
            continue
        if leftover == "delete":
            obj.delete()
            result["deleted"] += 1
        elif obj.is_active:
            obj.is_active = False
            obj.save(update_fields=["is_active", "updated_at"])
            result["deactivated"] += 1
    for pk, values in wanted.items():
        values.pop("stock_quantity", None)  # stock moves only through the stock service
        obj = current.get(pk)
        if obj is None:
            model.objects.create(shop=shop, **values, **({"stock_quantity": 0} if model is Item else {}))
            result["created"] += 1
            continue
        changed = [name for name, value in values.items() if getattr(obj, name) != value]
        if changed:
            for name in changed:
                setattr(obj, name, values[name])
            obj.save(update_fields=[*changed, "updated_at"])
            result["updated"] += 1
    return result


def _restore_stock(shop: Shop, rows: list[dict], user, reference: str) -> list[dict]:
    adjustments = []
    for row in sorted(rows, key=lambda r: str(r["id"])):
        item = Item.objects.get(pk=row["id"], shop=shop)
        delta = int(row["stock_quantity"]) - item.stock_quantity
        if delta:
            stock_update(
                item=item,
                change=delta,
                reason=StockReason.ADJUSTMENT,
                user=user,
                reference=reference,
                note="recovery snapshot restore",
            )
            adjustments.append(
                {
                    "item_id": str(item.pk),
                    "sku": item.sku,
                    "change": delta,
                    "stock": int(row["stock_quantity"]),
                }
            )
    return adjustments


def snapshot_cleanup_plan(*, now: datetime | None = None):
    return RecoverySnapshot.objects.filter(expires_at__lte=now or timezone.now()).order_by("expires_at")


@transaction.atomic
def snapshot_cleanup(*, now: datetime | None = None, dry_run: bool = False) -> int:
    """Delete snapshots past their expires_at (90 days). Returns how many (would be) deleted."""
    doomed = snapshot_cleanup_plan(now=now)
    count = doomed.count()
    if not dry_run:
        doomed.delete()
        logger.info("snapshot cleanup: %s expired snapshots deleted", count)
    return count
