"""Writes about job files: storage quota, files per job, deleting files.

Quota decisions:
- Per-user stored bytes (`STORAGE_QUOTA_BYTES`) is the sum of the sizes of the distinct stored
  objects of the user's jobs (a retry shares its input with the original: counted once). Going
  over it is 413 `storage_quota_exceeded`: the request is well-formed, but its content is more
  than the server will store for this user (400 stays for malformed input, 429 for rates).
  It is enforced on uploads; files the engine produces (exports) count toward the usage but do
  not fail a finished job.
- Race-free: the check runs under a row lock on the user (`accounts.services.user_lock`, FOR NO
  KEY UPDATE; the lock order is job → user → balance, docs/ARCHITECTURE.md), so concurrent
  uploads of one user queue and each sees the bytes the previous one committed.
- Files per job (`JOBS_MAX_FILES_PER_JOB`) is counted under the job row lock: 400 `too_many_files`.
- Failed model imports: a failed import gives its model slot back (the signal in jobs.signals),
  because holding it would cost a free user one of their few models for a corrupt file, with no
  way to get it back. What must not be unlimited is the repetition, so it is bounded per user:
  after JOBS_MAX_FAILED_MODEL_IMPORTS_PER_DAY failures in a rolling 24 h, a new import is a 429
  `too_many_failed_imports` (a limit is a 429, as everywhere). Oversize meshes never get that far: they
  are refused at upload, before a job or a slot exists (jobs.files.check_mesh_size).
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from accounts.services import user_lock
from config.exceptions import ApplicationError
from jobs.models import Job, JobFile
from jobs.states import JobStatus

logger = logging.getLogger(__name__)

DEAD_STATUSES = (JobStatus.FAILED, JobStatus.CANCELLED)
CLEANUP_BATCH = 500


class StorageQuotaExceeded(ApplicationError):
    code = "storage_quota_exceeded"
    status_code = 413


class TooManyFiles(ApplicationError):
    code = "too_many_files"
    status_code = 400


class TooManyFailedImports(ApplicationError):
    code = "too_many_failed_imports"
    status_code = 429


USAGE_SQL = """
SELECT COALESCE(SUM(size), 0) FROM (
    SELECT DISTINCT ON (f.file) f.size
      FROM {jobfile} f JOIN {job} j ON j.id = f.job_id
     WHERE j.user_id = %s
     ORDER BY f.file) stored
"""


def storage_used(*, user_id) -> int:
    """Bytes the user's jobs hold in storage (each stored object once)."""
    sql = USAGE_SQL.format(jobfile=JobFile._meta.db_table, job=Job._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(sql, [user_id])
        return int(cursor.fetchone()[0])


@transaction.atomic
def storage_quota_reserve(*, user_id, size: int) -> int:
    """Check that `size` more bytes fit in the user's quota; returns the bytes used before.

    Locks the user row until the caller's transaction ends, so the file row the caller then
    writes is counted by the next upload of the same user. Raises StorageQuotaExceeded (413).
    Call it after locking the job row the file goes to, if any, and before the credit balance
    row (lock order: job → user → balance).
    """
    user_lock(user_id=user_id)
    used = storage_used(user_id=user_id)
    quota = settings.STORAGE_QUOTA_BYTES
    if used + size > quota:
        raise StorageQuotaExceeded(
            f"Storing {size} more bytes would exceed your storage quota ({used} of {quota} bytes used). "
            "Delete or let old jobs expire to free space."
        )
    return used


def job_files_limit_check(*, job: Job) -> None:
    """Refuse one more file on `job` (400 `too_many_files`). The caller holds the job row lock."""
    limit = settings.JOBS_MAX_FILES_PER_JOB
    if JobFile.objects.filter(job=job).count() >= limit:
        raise TooManyFiles(f"A job may hold at most {limit} files.")


def model_import_failures_check(*, user_id, now: datetime | None = None) -> None:
    """Refuse a new model-limit job (429 `too_many_failed_imports`) once the user's model-limit
    jobs failed JOBS_MAX_FAILED_MODEL_IMPORTS_PER_DAY times in the last 24 hours.

    Call it with the user row locked (job_create's slot reservation holds it), so concurrent
    imports of one user are counted one after the other.
    """
    now = now or timezone.now()
    limit = settings.JOBS_MAX_FAILED_MODEL_IMPORTS_PER_DAY
    failed = Job.objects.filter(
        user_id=user_id,
        status=JobStatus.FAILED,
        kind__counts_toward_model_limit=True,
        completed_at__gte=now - timedelta(hours=24),
    ).count()
    if failed >= limit:
        raise TooManyFailedImports(
            f"{failed} model imports failed in the last 24 hours; try again later "
            "with a file that opens in a 3D tool."
        )


def _delete_stored(names: list[str]) -> None:
    """Delete storage objects that no remaining JobFile row refers to (a retry shares its
    original's input). Runs after commit: a rolled-back delete must not lose the bytes."""
    if not names:
        return
    still_used = set(JobFile.objects.filter(file__in=names).values_list("file", flat=True))
    storage = JobFile._meta.get_field("file").storage
    for name in names:
        if name in still_used:
            continue
        try:
            storage.delete(name)
        except OSError:
            logger.exception("Could not delete stored job file %s; it stays until the next cleanup.", name)


def _delete_rows(queryset) -> int:
    """Delete these JobFile rows now and their stored objects after commit; returns the count."""
    names = sorted(set(queryset.values_list("file", flat=True)))
    deleted, _ = queryset.delete()
    transaction.on_commit(lambda: _delete_stored(names))
    return deleted


@transaction.atomic
def job_files_delete(*, job_id) -> int:
    """Delete every file of a job (rows now, stored objects once the transaction commits).

    Called when a job is cancelled: its uploads must not keep occupying storage or quota.
    Artifacts that pointed at a deleted file keep their data with `file` set to null.
    """
    return _delete_rows(JobFile.objects.filter(job_id=job_id))


def job_files_cleanup_dead(
    *, now: datetime | None = None, days: int | None = None, batch: int = CLEANUP_BATCH
) -> dict:
    """Delete the files of jobs failed or cancelled more than `days` (JOBS_DEAD_FILES_DAYS) ago.

    Works in batches of `batch` jobs, each its own transaction, so a long run holds no lock for
    long and a crash loses nothing (a rerun picks up what is left: idempotent). Returns counts.
    """
    now = now or timezone.now()
    days = settings.JOBS_DEAD_FILES_DAYS if days is None else days
    cutoff = now - timedelta(days=days)
    dead = (
        Job.objects.filter(status__in=DEAD_STATUSES, completed_at__lt=cutoff, files__isnull=False)
        .order_by("pk")
        .values_list("pk", flat=True)
        .distinct()
    )
    jobs = files = 0
    last = None
    while True:
        page = dead if last is None else dead.filter(pk__gt=last)
        ids = list(page[:batch])
        if not ids:
            break
        with transaction.atomic():
            files += _delete_rows(JobFile.objects.filter(job_id__in=ids))
        jobs += len(ids)
        last = ids[-1]
    logger.info("dead job files cleanup: %s files of %s jobs (older than %s days)", files, jobs, days)
    return {"jobs": jobs, "files": files, "days": days}
