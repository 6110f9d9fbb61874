"""Writes to jobs, one module per topic (no module here imports jobs.engine or jobs.tasks):

- transitions: `job_transition` (and `job_transition_in_atomic`, the same inside the caller's
  atomic block), the only way a job's status (and its credits) change;
- lifecycle: creating, cancelling and retrying jobs;
- reports: what external workers and clients report (`job_report`, PATCH /api/stats, webhooks);
- files: uploads and processor outputs (written to storage before the completing transaction);
- stats: the per-day rollup rebuild.

Lock order, everywhere (docs/ARCHITECTURE.md, "Lock order"): the job row → the user row (FOR
NO KEY UPDATE: storage quota, model slots) → the credit balance row; the per-day stats rows are
only touched by deferred triggers at commit, after all of these. A job being inserted is not in
the list: nobody else can be waiting for its row.
"""

from accounts.services import ModelLimitReached
from jobs.services.files import job_file_add, job_outputs_discard, job_outputs_record, job_outputs_write
from jobs.services.lifecycle import (
    MAX_REQUESTED_COUNT,
    job_cancel,
    job_create,
    job_kind_get,
    job_retry,
)
from jobs.services.reports import Reporter, job_report, job_stats_upsert
from jobs.services.stats import job_daily_stats_rebuild
from jobs.services.transitions import job_lock, job_transition, job_transition_in_atomic

__all__ = [
    "MAX_REQUESTED_COUNT",
    "ModelLimitReached",
    "Reporter",
    "job_cancel",
    "job_create",
    "job_daily_stats_rebuild",
    "job_file_add",
    "job_kind_get",
    "job_lock",
    "job_outputs_discard",
    "job_outputs_record",
    "job_outputs_write",
    "job_report",
    "job_retry",
    "job_stats_upsert",
    "job_transition",
    "job_transition_in_atomic",
]
