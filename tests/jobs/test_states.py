import pytest

from config.exceptions import InvalidTransition
from jobs import services
from jobs.models import Job
from jobs.states import RANK, TERMINAL, TRANSITIONS, JobStatus, can_transition

pytestmark = pytest.mark.django_db


def test_every_state_has_a_row_and_terminal_states_have_no_exit():
    assert set(TRANSITIONS) == set(JobStatus.values) == set(RANK)
    for state in TERMINAL:
        assert TRANSITIONS[state] == frozenset()


def test_no_transition_moves_backwards_except_the_engines_retry_loop():
    for source, targets in TRANSITIONS.items():
        for target in targets:
            engine_retry_loop = (source, target) == ("retrying", "preparing") or (
                source in ("preparing", "processing", "finalizing") and target == "retrying"
            )
            assert RANK[target] >= RANK[source] or engine_retry_loop, (source, target)


@pytest.mark.parametrize(
    "source,target,allowed",
    [
        ("pending", "queued", True),
        ("queued", "processing", True),
        ("processing", "completed", True),
        ("completed", "processing", False),
        ("failed", "queued", False),
        ("cancelled", "completed", False),
        ("queued", "completed", False),
        ("pending", "retrying", False),
    ],
)
def test_transition_table(source, target, allowed):
    assert can_transition(source, target) is allowed


def test_the_orm_refuses_an_illegal_transition_whoever_saves(funded_user):
    job = services.job_create(user=funded_user, kind_code="account_batch")
    services.job_cancel(job=job)
    job = Job.objects.get(pk=job.pk)
    job.status = "processing"
    with pytest.raises(InvalidTransition):
        job.save()
    assert Job.objects.get(pk=job.pk).status == "cancelled"
