"""The job state machine: nine states and the only moves between them.

```
pending ──► queued ──► preparing ──► processing ──► finalizing ──► completed
   │          │  └────────────────────► processing       │
   │          │             │               │  └──────────┼──────► completed
   │          │             ▼               ▼             ▼
   │          │          retrying ◄──── (a failed attempt while attempts remain)
   │          │             │
   │          │             └──► preparing (the engine claims it again when next_attempt_at is due)
   ▼          ▼
cancelled  failed        (every non-terminal state may also go to cancelled or failed)
```

- `queued → processing` is how external workers (video_render, account_batch) start a job;
  the engine always goes through `preparing`.
- `completed`, `failed` and `cancelled` are terminal: nothing leaves them. A manual retry of a
  finished job creates a new job (`retry_of`), so every job is charged and refunded at most once.
- Only `jobs.services.job_transition` moves a job along this table (a database trigger refuses
  every other status write). The engine's set-based claim, start and completion statements are
  generated from this table (`sources_of`) and authorise exactly the jobs they lock and move.
- Every state has a rank; an *external report* (PATCH /api/stats, job webhooks) whose status does
  not rank above the current one is ignored rather than refused, so late or repeated reports
  never move a job backwards. Explicit commands (cancel, retry) that the table forbids are 409.
"""

from django.db import models


class JobStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    QUEUED = "queued", "Queued"
    PREPARING = "preparing", "Preparing"
    PROCESSING = "processing", "Processing"
    FINALIZING = "finalizing", "Finalizing"
    RETRYING = "retrying", "Retrying"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


S = JobStatus

TERMINAL = frozenset({S.COMPLETED, S.FAILED, S.CANCELLED})
# States in which a worker is (or was, if it died) running the job: the heartbeat matters here.
RUNNING = frozenset({S.PREPARING, S.PROCESSING, S.FINALIZING})
# States the engine may claim from.
CLAIMABLE = frozenset({S.QUEUED, S.RETRYING})

TRANSITIONS: dict[str, frozenset[str]] = {
    S.PENDING: frozenset({S.QUEUED, S.CANCELLED, S.FAILED}),
    S.QUEUED: frozenset({S.PREPARING, S.PROCESSING, S.CANCELLED, S.FAILED}),
    S.PREPARING: frozenset({S.PROCESSING, S.RETRYING, S.FAILED, S.CANCELLED}),
    S.PROCESSING: frozenset({S.FINALIZING, S.COMPLETED, S.RETRYING, S.FAILED, S.CANCELLED}),
    S.FINALIZING: frozenset({S.COMPLETED, S.RETRYING, S.FAILED, S.CANCELLED}),
    S.RETRYING: frozenset({S.PREPARING, S.FAILED, S.CANCELLED}),
    S.COMPLETED: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
}

# Forward order used to ignore late reports; retrying sits with the running states.
RANK: dict[str, int] = {
    S.PENDING: 0,
    S.QUEUED: 1,
    S.PREPARING: 2,
    S.RETRYING: 2,
    S.PROCESSING: 3,
    S.FINALIZING: 4,
    S.COMPLETED: 5,
    S.FAILED: 5,
    S.CANCELLED: 5,
}


def can_transition(current: str, target: str) -> bool:
    return target in TRANSITIONS.get(current, frozenset())


def sources_of(target: str) -> frozenset[str]:
    """Every status the table allows to move to `target`."""
    return frozenset(source for source, targets in TRANSITIONS.items() if target in targets)


def has_passed_queued(status: str) -> bool:
    """Whether a job in `status` has necessarily entered `queued` (and so must be charged).

    `cancelled` and `failed` are reachable straight from `pending`, so they do not imply it.
    """
    return status not in (S.PENDING, S.CANCELLED, S.FAILED)


def path_to(current: str, target: str) -> list[str]:
    """The shortest legal walk from `current` to `target` (empty if none), for external reports
    that jump ahead, e.g. pending → completed walks pending → queued → processing → completed."""
    if current == target:
        return []
    frontier, seen = [[current]], {current}
    while frontier:
        walk = frontier.pop(0)
        for nxt in sorted(TRANSITIONS[walk[-1]]):
            if nxt in seen:
                continue
            if nxt == target:
                return walk[1:] + [nxt]
            seen.add(nxt)
            frontier.append(walk + [nxt])
    return []


class ProjectStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PROCESSING = "processing", "Processing"
    COMPLETED = "completed", "Completed"
    ARCHIVED = "archived", "Archived"
    DELETED = "deleted", "Deleted"


# The project lifecycle: a project is drafted (models grouped, tooling chosen), processed (its
# exports made), completed; then archived or deleted. `deleted` is terminal (a soft delete: the
# row stays for the records, the API answers 404). Only `jobs.services.models3d.project_transition`
# writes the status, against this table; a database trigger refuses every other write.
P = ProjectStatus
PROJECT_TRANSITIONS: dict[str, frozenset[str]] = {
    P.DRAFT: frozenset({P.PROCESSING, P.ARCHIVED, P.DELETED}),
    P.PROCESSING: frozenset({P.COMPLETED, P.DRAFT, P.DELETED}),
    P.COMPLETED: frozenset({P.PROCESSING, P.ARCHIVED, P.DELETED}),
    P.ARCHIVED: frozenset({P.DRAFT, P.DELETED}),
    P.DELETED: frozenset(),
}
PROJECT_STATUS_SETTING = "jobs.project_transition"
