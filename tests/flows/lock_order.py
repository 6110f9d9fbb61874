"""The lock order of docs/ARCHITECTURE.md ("Lock order"), checked on the statements a flow runs.

`LockRecorder` watches the default connection (Django's documented `execute_wrapper`) and notes,
per transaction, every statement that locks a row of an ordered table: `UPDATE <table> … SET`
(also inside a WITH) and `SELECT … FOR [NO KEY] UPDATE` (the tables after OF, or else every
table the SELECT reads). Rows a transaction inserts are not locks anyone waits for, and the FOR
KEY SHARE their foreign keys take conflicts with none of these, so INSERTs are not noted.

`check()` fails when, in one transaction, a table is first locked after a table that comes
later in the order, or when the user row is locked FOR UPDATE instead of FOR NO KEY UPDATE.
"""

import re
from dataclasses import dataclass, field

from django.db import connection

from accounts.models import Subscription, User
from credits.models import CreditBalance
from jobs.models import Job

ORDER = [
    ("job", Job._meta.db_table),
    ("user", User._meta.db_table),
    ("subscription", Subscription._meta.db_table),
    ("balance", CreditBalance._meta.db_table),
]
RANK = {name: i for i, (name, _) in enumerate(ORDER)}
LEVEL_OF_TABLE = {table: name for name, table in ORDER}

UPDATE_SET = re.compile(r'\bUPDATE\s+"?(\w+)"?(?:\s+AS\s+\w+)?\s+SET\b', re.IGNORECASE)
FOR_UPDATE = re.compile(
    r'\bFOR\s+(NO\s+KEY\s+)?UPDATE\b(?:\s+OF\s+("?\w+"?(?:\s*,\s*"?\w+"?)*))?', re.IGNORECASE
)
READ_TABLES = re.compile(r'\b(?:FROM|JOIN)\s+"?(\w+)"?', re.IGNORECASE)


@dataclass
class Lock:
    level: str
    no_key: bool | None  # None: an UPDATE (FOR NO KEY UPDATE unless it changes a key)
    sql: str


@dataclass
class LockRecorder:
    transactions: list[list[Lock]] = field(default_factory=list)
    _keys: list = field(default_factory=list)

    def __call__(self, execute, sql, params, many, context):
        self.note(sql)
        return execute(sql, params, many, context)

    def note(self, sql: str) -> None:
        locks = [Lock(LEVEL_OF_TABLE[t], None, sql) for t in UPDATE_SET.findall(sql) if t in LEVEL_OF_TABLE]
        for match in FOR_UPDATE.finditer(sql):
            no_key = bool(match.group(1))
            tables = re.findall(r"\w+", match.group(2)) if match.group(2) else READ_TABLES.findall(sql)
            locks += [Lock(LEVEL_OF_TABLE[t], no_key, sql) for t in tables if t in LEVEL_OF_TABLE]
        if not locks:
            return
        # One transaction = one outermost atomic block; a statement outside one is its own.
        key = connection.atomic_blocks[0] if connection.in_atomic_block else object()
        if not self._keys or self._keys[-1] is not key:
            self._keys.append(key)
            self.transactions.append([])
        self.transactions[-1].extend(locks)

    def __enter__(self):
        self._wrapper = connection.execute_wrapper(self)
        self._wrapper.__enter__()
        return self

    def __exit__(self, *exc):
        self._wrapper.__exit__(*exc)

    def sequences(self) -> list[list[str]]:
        """Per transaction, the ordered tables in the order each was first locked."""
        out = []
        for locks in self.transactions:
            seen: list[str] = []
            for lock in locks:
                if lock.level not in seen:
                    seen.append(lock.level)
            out.append(seen)
        return out

    def check(self) -> None:
        for locks in self.transactions:
            for lock in locks:
                assert not (lock.level == "user" and lock.no_key is False), (
                    f"the user row is locked FOR UPDATE (FOR NO KEY UPDATE expected): {lock.sql}"
                )
        for seq in self.sequences():
            assert seq == sorted(seq, key=RANK.__getitem__), f"lock order broken: {seq}"
