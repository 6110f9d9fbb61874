"""Credits and the model limit follow a job's status through ORM signals.

`pre_save` on Job is the hook the design card names; it only ever runs for a save made by
`jobs.services.job_transition`, the one way to change a status. So a charge or refund and the
status change that caused it are written in the same transaction, in the lock order of
docs/ARCHITECTURE.md: the job row (locked by `job_transition`), then the user row (a model slot
given back), then the credit balance row (a charge or a refund):

- the first move to a status that implies the job entered `queued` charges
  credits_per_unit × requested_count (InsufficientCredits → 402; the transaction, job row
  included, rolls back, so nothing persists);
- entering `failed` or `cancelled` gives a held model-limit slot back
  (`accounts.services.user_models_used_change`), then refunds what was charged;
- entering `completed` with failed units refunds credits_per_unit × failed_count.

Every guard runs before any money moves: a status write with `update_fields`, an illegal move,
a save that did not come from `job_transition`, or one outside a transaction
(`connection.in_atomic_block`: the ledger's fast path would otherwise commit a charge on its
own before the job row is written) is refused with nothing charged. Each effect is also guarded
by a flag on the job row (`charged`, `credits_refunded`, `holds_model_slot`) and a per-job
idempotency key in the ledger, so it happens at most once per job whatever runs twice.
"""

from django.db import connection
from django.db.models.signals import pre_save
from django.dispatch import receiver

from accounts.services import user_models_used_change
from config.exceptions import InvalidTransition
from credits import services as credit_services
from jobs.models import Job
from jobs.states import JobStatus, can_transition, has_passed_queued

# What entering `completed` does to credits is decided by these columns: it charges a job not
# yet charged and refunds its failed units, so with these values it moves no credit at all. The
# one statement of that rule: the signal below and the engine's one-statement completions
# (jobs.engine.COMPLETE_SQL and COMPLETE_BATCH_SQL, whose WHERE is generated from it) read it.
COMPLETION_WITHOUT_CREDITS = {"charged": True, "failed_count": 0}


def completion_moves_credits(job: Job) -> bool:
    """Whether moving `job` (with its fields as they will be saved) to `completed` charges or
    refunds anything."""
    return any(getattr(job, name) != value for name, value in COMPLETION_WITHOUT_CREDITS.items())


class StatusWriteRefused(RuntimeError):
    """A job status was about to change outside `job_transition`: a programming error."""


def _refund(job: Job, amount: int, key: str, reason: str) -> None:
    amount = min(amount, job.credits_charged - job.credits_refunded)
    if amount <= 0:
        return
    credit_services.credits_refund(
        user=job.user, amount=amount, idempotency_key=f"job:{job.pk}:{key}", reason=reason, job_id=job.pk
    )
    job.credits_refunded += amount


@receiver(pre_save, sender=Job, dispatch_uid="jobs.job_credits_on_status")
def job_credits_on_status(sender, instance: Job, raw=False, update_fields=None, **kwargs):
    if raw:
        return
    adding = instance._state.adding
    previous = None if adding else getattr(instance, "_loaded_status", None)
    status = instance.status
    moving = status != JobStatus.PENDING if adding else previous != status
    if not moving:
        return

    # Guards first: nothing below may run unless the whole move will be written atomically.
    if update_fields is not None:
        raise StatusWriteRefused("A status move is saved in full: its credit fields must persist too.")
    if not adding and previous is not None and not can_transition(previous, status):
        raise InvalidTransition(f"A job cannot move from {previous} to {status}.")
    if getattr(instance, "_transition_to", None) != status:
        raise StatusWriteRefused("A job's status changes only through jobs.services.job_transition.")
    if not connection.in_atomic_block:
        raise StatusWriteRefused("A job's status (and its credits) change only inside a transaction.")

    if not instance.charged and has_passed_queued(status):
        instance.charged = True
        amount = instance.kind.credits_per_unit * instance.requested_count
        if amount > 0:
            credit_services.credits_charge(
                user=instance.user,
                amount=amount,
                idempotency_key=f"job:{instance.pk}:charge",
                reason=f"{instance.kind.code} job {instance.external_id}",
                job_id=instance.pk,
                # A job being inserted by this very save: no ledger row can hold its key yet.
                new_key=adding,
            )
            instance.credits_charged = amount

    if status in (JobStatus.FAILED, JobStatus.CANCELLED):
        # The user row before the balance row (the lock order): the other way round, a job
        # creation holding the user row and waiting for the balance row would deadlock with us.
        if instance.holds_model_slot:
            user_models_used_change(user_id=instance.user_id, delta=-1)
            instance.holds_model_slot = False
        _refund(instance, instance.credits_charged, "refund", f"job {status}")
    elif status == JobStatus.COMPLETED and completion_moves_credits(instance):
        _refund(
            instance,
            instance.kind.credits_per_unit * instance.failed_count,
            "refund-failed-units",
            f"{instance.failed_count} failed units",
        )
