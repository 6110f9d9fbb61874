import factory
from django.db import connection, transaction
from django.utils import timezone

from jobs.models import Job, JobKind
from jobs.services.transitions import AUTHORISE_SQL
from tests.factories import UserFactory


class JobFactory(factory.django.DjangoModelFactory):
    """A job row as-is, in any status, with no charge and no refund: for reads, stats and tenancy.
    Services create real jobs.

    Test-only bypass, on purpose: production code changes a status only through
    `jobs.services.job_transition`, and the database refuses any other status write (migration
    0012). This factory inserts the row raw (no pre_save credit signal) inside a transaction
    that authorises exactly this row, as job_transition does.
    """

    class Meta:
        model = Job

    user = factory.SubFactory(UserFactory)
    kind = factory.LazyFunction(lambda: JobKind.objects.get(code="account_batch"))
    status = "pending"
    requested_count = 1
    runs_on_engine = False
    charged = True  # a fixture row: no ledger side effects

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        now = timezone.now()
        kwargs.setdefault("created_at", now)
        kwargs.setdefault("updated_at", now)
        job = model_class(*args, **kwargs)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(AUTHORISE_SQL, [str(job.pk)])
            job.save_base(raw=True, force_insert=True)
        return job


def fail_job(job: Job, *, completed_at=None) -> Job:
    """Fail a queued or running job the way the engine does (job_transition: refund, slot back),
    then backdate when it finished if the test needs an old failure."""
    from jobs.services import job_transition

    with transaction.atomic():
        job = job_transition(job=Job.objects.select_for_update().get(pk=job.pk), to="failed")
    if completed_at is not None:
        Job.objects.filter(pk=job.pk).update(completed_at=completed_at)
        job.completed_at = completed_at
    return job
