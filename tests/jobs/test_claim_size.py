"""How many jobs a worker claims at a time (engine.claim_size): many per round trip when jobs
are short, never fewer than the fixed batch (JOBS_CLAIM_BATCH) when they are merely slowed down
by a busy machine, one at a time when they are long."""

import pytest

from jobs import engine, services
from jobs.models import Job
from jobs.states import JobStatus
from tests.jobs.conftest import give_credits


@pytest.fixture
def window(settings):
    settings.JOBS_CLAIM_BATCH = 8
    settings.JOBS_CLAIM_BATCH_MAX = 64
    settings.JOBS_CLAIM_WINDOW_SECONDS = 0.25
    return settings


@pytest.mark.parametrize(
    ("seconds_per_job", "size"),
    [(0, 64), (0.0001, 64), (0.001, 64), (0.01, 25), (0.03, 8), (0.2, 1), (0.25, 1), (30, 1)],
)
def test_a_batch_holds_what_the_window_fits_up_to_the_maximum(window, seconds_per_job, size):
    assert engine.claim_size(seconds_per_job=seconds_per_job) == size


@pytest.mark.parametrize("seconds_per_job", [0.032, 0.05, 0.1, 0.125])
def test_jobs_slowed_down_by_a_busy_machine_are_still_claimed_a_fixed_batch(window, seconds_per_job):
    # a batch of 8 would take up to 4 windows (1 s): under CPU contention a no-op job's wall time
    # grows several-fold, and claiming fewer would only add claim round trips
    assert int(window.JOBS_CLAIM_WINDOW_SECONDS / seconds_per_job) < 8  # what the window alone fits
    assert engine.claim_size(seconds_per_job=seconds_per_job) == 8


@pytest.mark.parametrize(("seconds_per_job", "size"), [(0.126, 1), (0.5, 1), (0.01, 25)])
def test_only_jobs_that_overrun_the_window_widely_shrink_the_claim_below_the_fixed_batch(
    window, seconds_per_job, size
):
    assert engine.claim_size(seconds_per_job=seconds_per_job) == size


def test_the_floor_never_exceeds_the_maximum(window):
    window.JOBS_CLAIM_BATCH_MAX = 4
    assert engine.claim_size(seconds_per_job=0.05) == 4


def test_a_maximum_below_one_still_claims_one(window):
    window.JOBS_CLAIM_BATCH_MAX = 0
    assert engine.claim_size(seconds_per_job=0.001) == 1


def test_one_delayed_job_does_not_set_the_pace_of_its_batch():
    # a worker descheduled for 2 s during one job of eight short ones
    assert engine.batch_seconds_per_job([0.002] * 7 + [2.0]) == 0.002
    assert engine.batch_seconds_per_job([]) == 0.0


@pytest.fixture
def claims(monkeypatch):
    """The `limit` of every claim the drain makes (the real claim runs)."""
    limits = []
    claim = engine.jobs_claim

    def recording_claim(*, limit):
        limits.append(limit)
        return claim(limit=limit)

    monkeypatch.setattr(engine, "jobs_claim", recording_claim)
    return limits


def _queue(user, n):
    give_credits(user, n)
    return [services.job_create(user=user, kind_code="test_noop") for _ in range(n)]


@pytest.mark.django_db(transaction=True)
def test_after_a_batch_of_short_jobs_the_drain_claims_up_to_the_maximum(user, settings, claims):
    settings.JOBS_CLAIM_BATCH_MAX = 5
    settings.JOBS_CLAIM_WINDOW_SECONDS = 3600  # every job here is "short"
    jobs = _queue(user, 12)

    assert engine.jobs_drain(budget_seconds=60, batch=1) == 12

    assert claims == [1, 5, 5, 5, 5]  # 1 + 5 + 5 + 1 jobs, then an empty claim ends the drain
    assert set(Job.objects.filter(pk__in=[j.pk for j in jobs]).values_list("status", flat=True)) == {
        JobStatus.COMPLETED
    }


@pytest.mark.django_db(transaction=True)
def test_when_jobs_outlast_the_window_the_drain_claims_one_at_a_time(user, settings, claims):
    settings.JOBS_CLAIM_BATCH_MAX = 64
    settings.JOBS_CLAIM_WINDOW_SECONDS = 1e-9  # every job here is "long"
    _queue(user, 4)

    assert engine.jobs_drain(budget_seconds=60, batch=3) == 4

    assert claims == [3, 1, 1]  # 3 + 1 jobs, then an empty claim
