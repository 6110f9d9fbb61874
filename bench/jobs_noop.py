"""The no-op processor the throughput benchmark's worker processes load
(JOBS_EXTRA_PROCESSOR_MODULES=jobs_noop, with bench/ on PYTHONPATH)."""

from jobs.processors import register


@register("bench_noop")
def noop(ctx):
    return None
