"""Credits and the model limit follow a job's status through ORM signals (SPEC §5).

`pre_save` on Job, so a charge or refund and the status change that caused it are written in
the same transaction, and the balance row is locked before the job row's triggers run:

- the first save at a status that implies the job entered `queued` charges
  credits_per_unit × requested_count (InsufficientCredits → 402; the caller's transaction,
  job row included, rolls back, so nothing persists);
- entering `failed` or `cancelled` refunds what was charged;
- entering `completed` with failed units refunds credits_per_unit × failed_count;
- entering `failed` or `cancelled` gives a held model-limit slot back.

Each effect is guarded twice: by a flag on the job row (`charged`, `credits_refunded`,
`holds_model_slot`) and by a per-job idempotency key in the ledger, so it happens at most once
per job whatever runs twice. Writes that bypass `save()` (the engine's claim, heartbeats,
progress) never change a status that has a credit meaning.
"""

from django.db.models import F
from django.db.models.signals import pre_save
from django.dispatch import receiver

from accounts.models import User
from config.exceptions import InvalidTransition
from credits import services as credit_services
from jobs.models import Job
from jobs.states import JobStatus, can_transition, has_passed_queued


def _refund(job: Job, amount: int, key: str, reason: str) -> None:
    amount = min(amount, job.credits_charged - job.credits_refunded)
    if amount <= 0:
        return
    credit_services.credits_refund(user=job.user, amount=amount, idempotency_key=f"job:{job.pk}:{key}",
                                   reason=reason, job_id=job.pk)
    job.credits_refunded += amount


@receiver(pre_save, sender=Job, dispatch_uid="jobs.job_credits_on_status")
def job_credits_on_status(sender, instance: Job, raw=False, update_fields=None, **kwargs):
    if raw:
        return
    previous = getattr(instance, "_loaded_status", None)
    adding = instance._state.adding
    status = instance.status
    if not adding and previous is not None and previous != status and not can_transition(previous, status):
        raise InvalidTransition(f"A job cannot move from {previous} to {status}.")

    if not instance.charged and has_passed_queued(status):
        instance.charged = True
        amount = instance.kind.credits_per_unit * instance.requested_count
        if amount > 0:
            credit_services.credits_charge(user=instance.user, amount=amount,
                                           idempotency_key=f"job:{instance.pk}:charge",
                                           reason=f"{instance.kind.code} job {instance.external_id}",
                                           job_id=instance.pk)
            instance.credits_charged = amount

    if status != previous:
        if status in (JobStatus.FAILED, JobStatus.CANCELLED):
            _refund(instance, instance.credits_charged, "refund", f"job {status}")
            if instance.holds_model_slot:
                User.objects.filter(pk=instance.user_id, models_used__gt=0).update(
                    models_used=F("models_used") - 1)
                instance.holds_model_slot = False
        elif status == JobStatus.COMPLETED and instance.failed_count > 0:
            _refund(instance, instance.kind.credits_per_unit * instance.failed_count,
                    "refund-failed-units", f"{instance.failed_count} failed units")

    if update_fields is not None and "status" in update_fields:
        raise ValueError("Save a job's status with a full save(): the credit fields must persist too.")
    instance._loaded_status = status
