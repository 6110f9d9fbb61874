"""The ledger: every credit movement is one row here plus one balance update, atomically.

The protocol every write follows: lock the user's CreditBalance row (creating it if
missing), insert the CreditTransaction with its balance_after, update the balance — all in one
transaction (a savepoint when the caller already has one open). The same UPDATE adds the
amount to the balance row's lifetime counter for the row's type (`LIFETIME_COUNTERS`), so the
lifetime totals are read from that row, never summed over the ledger. The balance row lock
serialises writers per user, so balance = SUM(ledger) holds under any concurrency, and the
CHECK constraints on both tables make a negative balance impossible even for buggy callers.

How: the common case is one statement (`_write_in_one_statement`: a conditional UPDATE of the
balance row, which takes its lock, feeding the ledger INSERT); outside a transaction that
statement is its own transaction, inside the caller's it runs in a savepoint. The services are
therefore not decorated with @transaction.atomic: the decorator would add BEGIN/COMMIT round
trips while the row lock is held. Anything unusual (no balance row yet, short balance, replayed
key) falls back to the explicit SELECT ... FOR UPDATE path in a transaction.

Idempotency: each row carries a caller-chosen unique `idempotency_key`. A second call with a
key that already exists returns the existing row and changes nothing; the unique index, not a
prior read, decides, so two concurrent calls with one key still produce one row. A key reused
for another user, type or amount is a caller bug, not a replay: 409 `idempotency_key_reused`.
"""

import logging
import uuid
from contextlib import nullcontext

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from rest_framework import status

from config.exceptions import ApplicationError, Conflict
from credits.models import LIFETIME_COUNTERS, CreditBalance, CreditTransaction

logger = logging.getLogger(__name__)

TxType = CreditTransaction.Type
GRANT_TYPES = (TxType.BONUS, TxType.PURCHASE, TxType.ADJUSTMENT)
MAX_KEY_LENGTH = 255
MAX_AMOUNT = 1_000_000_000


class InsufficientCredits(ApplicationError):
    code = "insufficient_credits"
    status_code = status.HTTP_402_PAYMENT_REQUIRED


def credits_charge(
    *,
    user,
    amount: int,
    idempotency_key: str,
    reason: str = "",
    job_id=None,
    created_by=None,
    new_key: bool = False,
) -> CreditTransaction:
    """Spend `amount` (> 0) credits of `user`: a `usage` row of -amount.

    Locks the user's balance row. Raises InsufficientCredits (402) when the balance is short,
    ValueError for a non-positive amount or an empty key. If a row with `idempotency_key`
    exists, returns it and changes nothing (even when the balance is now short); Conflict 409
    `idempotency_key_reused` when that row is another user's or another type or amount.

    `new_key`: the caller knows no row can hold this key yet (it is derived from a row the
    caller is inserting in the same transaction: a new job's charge), so inside a transaction
    the write takes no savepoint (two round trips fewer on every job creation). Were the key
    there after all, the unique index would abort the caller's transaction instead of the
    earlier row being returned.
    """
    _require_positive(amount)
    return _ledger_write(
        user_id=user.pk,
        type=TxType.USAGE,
        amount=-amount,
        idempotency_key=idempotency_key,
        reason=reason,
        job_id=job_id,
        created_by=created_by,
        savepoint=not new_key,
    )


def credits_refund(
    *, user, amount: int, idempotency_key: str, reason: str = "", job_id=None, payment=None, created_by=None
) -> CreditTransaction:
    """Give back `amount` (> 0) credits to `user`: a `refund` row of +amount.

    Locks the user's balance row; at most once per `idempotency_key` (an existing row is
    returned unchanged). Raises ValueError for a non-positive amount or an empty key.
    """
    _require_positive(amount)
    return _ledger_write(
        user_id=user.pk,
        type=TxType.REFUND,
        amount=amount,
        idempotency_key=idempotency_key,
        reason=reason,
        job_id=job_id,
        payment=payment,
        created_by=created_by,
    )


def credits_grant(
    *,
    user,
    amount: int,
    idempotency_key: str,
    type: str = TxType.BONUS,
    reason: str = "",
    payment=None,
    created_by=None,
) -> CreditTransaction:
    """Add credits to `user` as a `bonus`, `purchase` or `adjustment` row.

    bonus and purchase need amount > 0; an adjustment may be negative (a staff correction)
    but never takes the balance below zero: that raises InsufficientCredits (402). Locks the
    user's balance row; at most once per `idempotency_key`. Raises ValueError for an unknown
    type, a zero amount, a wrong sign or an empty key.
    """
    if type not in GRANT_TYPES:
        raise ValueError(f"credits_grant type must be one of {[str(t) for t in GRANT_TYPES]}, not {type!r}")
    if type == TxType.ADJUSTMENT:
        _require_int(amount)
        if amount == 0:
            raise ValueError("An adjustment must change the balance.")
    else:
        _require_positive(amount)
    return _ledger_write(
        user_id=user.pk,
        type=type,
        amount=amount,
        idempotency_key=idempotency_key,
        reason=reason,
        payment=payment,
        created_by=created_by,
    )


def _require_int(amount) -> None:
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise ValueError(f"Credit amounts are integers, got {amount!r}")
    if abs(amount) > MAX_AMOUNT:
        # balances are 32-bit integers in PostgreSQL; refuse here rather than overflow there
        raise ValueError(f"Credit amounts are at most {MAX_AMOUNT} in absolute value, got {amount}")


def _require_positive(amount) -> None:
    _require_int(amount)
    if amount <= 0:
        raise ValueError(f"The amount must be positive, got {amount}")


def _ledger_write(
    *,
    user_id,
    type: str,
    amount: int,
    idempotency_key: str,
    reason: str = "",
    job_id=None,
    payment=None,
    created_by=None,
    savepoint: bool = True,
) -> CreditTransaction:
    if not idempotency_key or not isinstance(idempotency_key, str) or len(idempotency_key) > MAX_KEY_LENGTH:
        raise ValueError(f"idempotency_key must be a non-empty string of at most {MAX_KEY_LENGTH} chars")
    if job_id is not None and not isinstance(job_id, uuid.UUID):
        job_id = uuid.UUID(str(job_id))
    try:
        return _apply(
            user_id=user_id,
            type=type,
            amount=amount,
            idempotency_key=idempotency_key,
            reason=(reason or "")[:500],
            job_id=job_id,
            payment=payment,
            created_by=created_by,
            savepoint=savepoint,
        )
    except IntegrityError:
        if not savepoint:
            raise  # the caller's transaction is aborted: nothing can be read in it any more
        # Our savepoint is rolled back. If the key already existed (a replay, possibly a
        # concurrent one), the earlier row is the answer; any other violation is a real error.
        existing = _existing(idempotency_key, user_id=user_id, type=type, amount=amount)
        if existing is None:
            raise
        return existing


def _apply(*, user_id, type, amount, idempotency_key, reason, job_id, payment, created_by, savepoint=True):
    now = timezone.now()
    row = CreditTransaction(
        id=uuid.uuid4(),
        created_at=now,
        updated_at=now,
        user_id=user_id,
        type=type,
        amount=amount,
        job_id=job_id,
        payment=payment,
        idempotency_key=idempotency_key,
        reason=reason,
        created_by=created_by,
    )
    if connection.in_atomic_block or not connection.get_autocommit():
        # A savepoint, so a refusal leaves the caller's transaction usable; none for a key the
        # caller knows is new (nothing to refuse as a replay).
        with transaction.atomic() if savepoint else nullcontext():
            return _saved(row) if _write_in_one_statement(row) else _write_under_lock(row)
    # In autocommit one statement is one transaction, so the common case needs no BEGIN/COMMIT.
    if _write_in_one_statement(row):
        return _saved(row)
    with transaction.atomic():
        return _write_under_lock(row)


def _saved(row: CreditTransaction) -> CreditTransaction:
    """The instance as loaded from the database (Model.from_db, Django's documented hook), so a
    later save() updates rather than inserts."""
    fields = [f.attname for f in CreditTransaction._meta.concrete_fields]
    return CreditTransaction.from_db(connection.alias, fields, [getattr(row, name) for name in fields])


ONE_STATEMENT_SQL = """
WITH locked AS (
    UPDATE {balance} SET balance = balance + %(amount)s, {counter} = {counter} + %(counter_delta)s,
                         updated_at = %(now)s
    WHERE user_id = %(user_id)s AND balance + %(amount)s >= 0
    RETURNING balance
)
INSERT INTO {ledger} (id, created_at, updated_at, user_id, type, amount, balance_after, job_id, payment_id,
                      idempotency_key, reason, created_by_id)
SELECT %(id)s, %(now)s, %(now)s, %(user_id)s, %(type)s, %(amount)s, locked.balance, %(job_id)s,
       %(payment_id)s, %(key)s, %(reason)s, %(created_by_id)s
FROM locked
RETURNING balance_after
"""


def _write_in_one_statement(row: CreditTransaction) -> bool:
    """The fast path: lock + balance update + ledger insert in a single statement.

    The UPDATE takes the balance row's lock (waiting behind concurrent writers and then
    re-checking `balance + amount >= 0` on the newest version, as READ COMMITTED does), and
    the INSERT in the same statement records the balance it produced. If the idempotency key
    exists, the INSERT fails and with it the whole statement, UPDATE included. It cannot
    create a missing balance row and does not explain a refusal: when no row was updated it
    returns False and the caller takes `_write_under_lock`, which does both.
    This is the hot path of every job; one round trip instead of three keeps the row lock
    held for the shortest possible time (see bench/credits_charge.py).
    """
    counter, sign = LIFETIME_COUNTERS[row.type]
    sql = ONE_STATEMENT_SQL.format(
        balance=CreditBalance._meta.db_table, ledger=CreditTransaction._meta.db_table, counter=counter
    )
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            {
                "id": row.id,
                "now": row.created_at,
                "user_id": row.user_id,
                "type": row.type,
                "amount": row.amount,
                "counter_delta": sign * row.amount,
                "job_id": row.job_id,
                "payment_id": row.payment_id,
                "key": row.idempotency_key,
                "reason": row.reason,
                "created_by_id": row.created_by_id,
            },
        )
        result = cursor.fetchone()
    if result is None:
        return False
    row.balance_after = result[0]
    return True


def _write_under_lock(row: CreditTransaction) -> CreditTransaction:
    """The general path: SELECT ... FOR UPDATE the balance row (creating it if missing), refuse
    with InsufficientCredits unless the key was already used, else insert and update."""
    balance_pk, balance = balance_lock(user_id=row.user_id)
    new_balance = balance + row.amount
    if new_balance < 0:
        existing = _existing(row.idempotency_key, user_id=row.user_id, type=row.type, amount=row.amount)
        if existing is not None:
            return existing
        raise InsufficientCredits(
            f"Not enough credits: {-row.amount} needed, {balance} available.",
            extra={"required": -row.amount, "balance": balance},
        )
    row.balance_after = new_balance
    row.save(force_insert=True)
    counter, sign = LIFETIME_COUNTERS[row.type]
    CreditBalance.objects.filter(pk=balance_pk).update(
        balance=new_balance, updated_at=row.created_at, **{counter: F(counter) + sign * row.amount}
    )
    return row


def balance_lock(*, user_id) -> tuple:
    """Lock the user's CreditBalance row and return (pk, balance); the row is created at 0 if
    missing. Call it inside a transaction: the lock holds until that transaction ends, and no
    ledger write of this user can happen meanwhile (they all lock this row first), so the balance
    read stays true until commit — what a caller needs to decide how much it may take (a refund's
    clawback, never below zero) before writing it through `credits_grant`.

    Lock order: take it after the rows the caller already holds in the documented order (user →
    payment or job → balance). Creation is race-safe: ON CONFLICT DO NOTHING lets two first
    writes meet, one inserts, and both then lock the same row.
    """
    locked = (
        CreditBalance.objects.select_for_update()
        .filter(user_id=user_id)
        .order_by()
        .values_list("pk", "balance")
    )
    row = next(iter(locked), None)
    if row is None:
        CreditBalance.objects.bulk_create([CreditBalance(user_id=user_id, balance=0)], ignore_conflicts=True)
        row = next(iter(locked.all()))
    return row


def _existing(idempotency_key: str, *, user_id, type: str, amount: int) -> CreditTransaction | None:
    """The row already written under `idempotency_key` (a replay), or None. Raises Conflict 409
    `idempotency_key_reused` when that row is not the same movement (owner, type, amount)."""
    existing = CreditTransaction.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None and (existing.user_id, existing.type, existing.amount) != (user_id, type, amount):
        logger.warning(
            "credits: idempotency key %r reused for a different movement (user %s %s %s, was user %s %s %s)",
            idempotency_key,
            user_id,
            type,
            amount,
            existing.user_id,
            existing.type,
            existing.amount,
        )
        raise Conflict(
            "This idempotency key was already used for a different credit movement.",
            code="idempotency_key_reused",
        )
    return existing
