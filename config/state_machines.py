"""What every state machine but the job's shares (payments, orders, subscriptions, licenses,
backups): a transition table declared once, and a database guard that
makes one transition service the only writer of the status column.

Each app declares its machine in `<app>/states.py` (`StateMachine(...)`), puts
`config.status_guard.status_guard(...)` with the same setting in the model's `Meta.triggers` (django-pgtrigger
compiles it into a migration), and writes the status only in its `<entity>_transition`
service, which calls `machine.check()` under the row lock and `machine.authorise(pk)` right
before its one write.

The guard is the jobs app's (`jobs/migrations/0008_job_status_guard.py`), per table: a BEFORE
UPDATE OF status trigger refuses a status change unless the transaction authorised exactly that
row with `set_config('<setting>', '<id>', true)`; the authorisation is transaction-local and
consumed by the one write it allows, so a second status write in the same transaction needs
its own. A bare `save()`, a queryset `update()` and raw SQL are all refused (SQLSTATE 42501).
Chosen over django-fsm-2's protected field because it holds for every writer, not only
`Model.save()`. Inserting a row is creation, not a transition, and is not guarded: each app's
services create rows in their initial status.
"""

from collections.abc import Iterable

from django.db import connection

from config.exceptions import InvalidTransition

AUTHORISE_SQL = "SELECT set_config(%s, %s, true)"


class StateMachine:
    """A status column's transition table and the guard that protects it.

    `transitions` maps each status to the statuses it may move to (terminal: empty).
    `setting` is the transaction-local PostgreSQL setting the model's `status_guard` reads
    (`<app>.<entity>_transition`). `message` is the refusal's text, with `{current}` and
    `{target}`.
    """

    def __init__(
        self,
        *,
        entity: str,
        transitions: dict[str, Iterable[str]],
        setting: str,
        message: str = "A {current} {entity} cannot become {target}.",
    ):
        self.entity = entity
        self.message = message
        self.transitions = {str(k): frozenset(str(t) for t in v) for k, v in transitions.items()}
        unknown = {t for targets in self.transitions.values() for t in targets} - set(self.transitions)
        if unknown:
            raise ValueError(f"{entity}: transitions to undeclared statuses {sorted(unknown)}")
        self.setting = setting

    @property
    def terminal(self) -> frozenset[str]:
        return frozenset(status for status, targets in self.transitions.items() if not targets)

    def can_transition(self, current: str, target: str) -> bool:
        return str(target) in self.transitions.get(str(current), frozenset())

    def check(self, current: str, target: str) -> None:
        """Raise InvalidTransition (409) unless `current → target` is in the table."""
        if not self.can_transition(current, target):
            raise InvalidTransition(
                self.message.format(current=current, target=target, entity=self.entity),
                extra={"from": str(current), "to": str(target)},
            )

    def authorise(self, pk) -> None:
        """Allow one status write of row `pk` in the current transaction (call inside it, right
        before the write; outside a transaction the authorisation would end with the SELECT)."""
        with connection.cursor() as cursor:
            cursor.execute(AUTHORISE_SQL, [self.setting, str(pk)])
