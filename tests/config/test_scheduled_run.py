import threading

import pytest
from django.db import connection

from config.models import ScheduledRun
from config.scheduled import period_key, scheduled_run


@pytest.mark.django_db
def test_a_second_run_of_the_same_period_is_a_no_op():
    # given a run that succeeded
    with scheduled_run("t.demo", period_key="2026-11-22") as run:
        run.counts = {"done": 3}

    # when the same period runs again
    with scheduled_run("t.demo", period_key="2026-11-22") as again:
        # then it is told not to run
        assert again is None

    row = ScheduledRun.objects.get(task="t.demo")
    assert (row.outcome, row.counts, row.attempts) == ("succeeded", {"done": 3}, 1)
    assert row.finished_at is not None


@pytest.mark.django_db
def test_a_failed_run_records_the_error_and_may_run_again():
    with pytest.raises(RuntimeError), scheduled_run("t.demo", period_key="k") as run:
        raise RuntimeError("disk full")
    failed = ScheduledRun.objects.get(task="t.demo")
    assert failed.outcome == "failed" and "disk full" in failed.error

    with scheduled_run("t.demo", period_key="k") as run:
        assert run is not None
        run.counts = {"ok": 1}

    row = ScheduledRun.objects.get(task="t.demo")
    assert (row.outcome, row.attempts, row.error) == ("succeeded", 2, "")


@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_of_one_period_run_exactly_once():
    ran = []
    barrier = threading.Barrier(6)

    def worker():
        try:
            barrier.wait()
            with scheduled_run("t.race", period_key="p") as run:
                if run is not None:
                    ran.append(1)
                    run.counts = {"n": 1}
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(ran) == 1
    assert ScheduledRun.objects.filter(task="t.race").count() == 1


def test_period_keys():
    from datetime import UTC, datetime

    now = datetime(2026, 11, 22, 10, 15, 30, tzinfo=UTC)
    assert period_key("minute", now=now) == "2026-11-22T10:15"
    assert period_key("day", now=now) == "2026-11-22"
    assert period_key("week", now=now) == "2026-W47"
    assert period_key("month", now=now) == "2026-11"
