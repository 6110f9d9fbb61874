"""Processors for test-only job kinds, driven by the job's params.

Imported by the tests (in-process workers) and, through JOBS_EXTRA_PROCESSOR_MODULES, by worker
subprocesses. params: {"fail_until_attempt": n} raises on attempts ≤ n;
{"block_on_attempt": n} reports progress 10 and then sleeps on attempt n (the kill test);
{"permanent": true} raises PermanentJobError; {"failed_count": n} reports n failed units;
{"steal": <job id>} makes that job's heartbeat stale, runs the rescue and claims and starts
the job again (its first worker loses the lease); {"watch": <job id>} waits (30 s at most)
until that job's heartbeat is refreshed after this attempt started and returns what it saw.
test_output adds one STL output file whose bytes are params["output"] (default "solid ok").
"""

import time
from datetime import timedelta

from django.utils import timezone

from jobs.processors import JobContext, PermanentJobError, register

TEST_KIND_CODES = ["test_script", "test_noop", "test_output"]


@register("test_noop")
def noop(ctx: JobContext):
    return None


@register("test_script")
def script(ctx: JobContext):
    params = ctx.params
    if params.get("permanent"):
        raise PermanentJobError("told to fail for good")
    if ctx.attempt <= int(params.get("fail_until_attempt", 0)):
        raise RuntimeError(f"planned failure on attempt {ctx.attempt}")
    if ctx.attempt == int(params.get("block_on_attempt", 0)):
        ctx.progress(10)
        time.sleep(float(params.get("block_seconds", 120)))
    if "steal" in params:
        _steal(params["steal"])
    if "watch" in params:
        return {"result": {"attempt": ctx.attempt, "watched": _watch(params["watch"])}}
    ctx.progress(50)
    outcome = {"result": {"attempt": ctx.attempt}}
    if "failed_count" in params:
        outcome["failed_count"] = int(params["failed_count"])
    return outcome


def _steal(job_id) -> None:
    """Take that job from the worker holding it, as happens when its heartbeat goes stale: the
    rescue puts it back (`retrying`, due at once) and another worker claims and starts it."""
    from jobs import engine
    from jobs.models import Job

    Job.objects.filter(pk=job_id).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    assert engine.jobs_rescue_stale()["rescued"] == 1
    [(claimed_id, attempt)] = engine.jobs_claim(limit=1)
    assert claimed_id == job_id or str(claimed_id) == job_id
    assert engine._job_start(claimed_id, attempt) is not None


def _watch(job_id) -> dict:
    """The watched job's status once its heartbeat was refreshed after now (or 30 s passed)."""
    from jobs.models import Job

    since = timezone.now()
    deadline = time.monotonic() + 30
    while True:
        status, heartbeat_at = Job.objects.values_list("status", "heartbeat_at").get(pk=job_id)
        if heartbeat_at > since or time.monotonic() > deadline:
            return {"status": status, "heartbeat_refreshed": heartbeat_at > since}
        time.sleep(0.02)


@register("test_output")
def output(ctx: JobContext):
    ctx.add_output(str(ctx.params.get("output", "solid ok")).encode(), "stl", name="out.stl")
    return None
