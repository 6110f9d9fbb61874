"""Helpers of the concurrency flows: real threads through the real API, the engine running beside
them, and the checks that the books and the model slots still agree afterwards."""

import threading
from collections.abc import Callable

from django.db import connection
from django.db.models import Sum

from accounts.models import User
from credits.models import CreditTransaction
from credits.selectors import credits_audit
from jobs import engine
from jobs.models import Job
from jobs.states import TERMINAL


def run_concurrently(n: int, fn: Callable[[int], object]) -> list:
    """fn(0) … fn(n-1) in n threads released together; their results (an exception is kept as the
    result, so one failure cannot hide the others)."""
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def target(i):
        try:
            barrier.wait()
            results[i] = fn(i)
        except Exception as exc:
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


class EngineBeside:
    """`workers` threads claiming and running engine jobs until the block ends, as the Celery
    workers do beside the API; every exception they raise is kept in `errors`."""

    def __init__(self, workers: int = 2):
        self.workers = workers
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def _loop(self):
        try:
            while not self._stop.is_set():
                try:
                    if not engine.jobs_drain(budget_seconds=0.5, batch=4):
                        self._stop.wait(0.02)
                except Exception as exc:
                    self.errors.append(exc)
        finally:
            connection.close()

    def __enter__(self):
        self._threads = [threading.Thread(target=self._loop) for _ in range(self.workers)]
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for t in self._threads:
            t.join()


def drain_engine() -> None:
    """Run what is left on the engine, in this thread, until no job is due."""
    while engine.jobs_drain(budget_seconds=5, batch=8):
        pass


def assert_consistent(user: User) -> None:
    """The user's books and model slots agree with their jobs:

    - every balance equals the sum of its ledger, none is negative (credits.selectors.credits_audit);
    - each job's ledger rows add up to what the job says it was charged less refunded;
    - models_used is the number of jobs holding a slot, within model_limit, and no finished-
      unsuccessfully or deleted job holds one.
    """
    assert credits_audit() == []
    user.refresh_from_db()
    net = dict(
        CreditTransaction.objects.filter(user=user, job_id__isnull=False)
        .values_list("job_id")
        .annotate(total=Sum("amount"))
    )
    for job_id, charged, refunded in Job.objects.filter(user=user).values_list(
        "pk", "credits_charged", "credits_refunded"
    ):
        assert -net.get(job_id, 0) == charged - refunded, (job_id, charged, refunded, net.get(job_id))
    holding = Job.objects.filter(user=user, holds_model_slot=True)
    assert user.models_used == holding.count()
    assert user.models_used <= user.model_limit
    assert not holding.filter(status__in=["failed", "cancelled"]).exists()
    assert not holding.filter(deleted_at__isnull=False).exists()


def all_finished(user: User) -> bool:
    return not Job.objects.filter(user=user).exclude(status__in=TERMINAL).exists()
