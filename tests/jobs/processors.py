"""Processors for test-only job kinds, driven by the job's params.

Imported by the tests (in-process workers) and, through JOBS_EXTRA_PROCESSOR_MODULES, by worker
subprocesses. params: {"fail_until_attempt": n} raises on attempts ≤ n;
{"block_on_attempt": n} reports progress 10 and then sleeps on attempt n (the kill test);
{"permanent": true} raises PermanentJobError. test_output adds one STL output file whose
bytes are params["output"] (default "solid ok").
"""

import time

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
    ctx.progress(50)
    return {"result": {"attempt": ctx.attempt}}


@register("test_output")
def output(ctx: JobContext):
    ctx.add_output(str(ctx.params.get("output", "solid ok")).encode(), "stl", name="out.stl")
    return None
