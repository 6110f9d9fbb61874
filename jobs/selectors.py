"""Reads of jobs, scoped to the caller. Stats read the JobDailyStat rollup, never the jobs table."""

from datetime import UTC, date, datetime, timedelta

from django.db import connection
from django.db.models import Avg, Count, F, Prefetch, Sum
from django.utils import timezone

from config.exceptions import NotFound
from jobs.models import Job, JobDailyStat, JobFile
from jobs.states import JobStatus


def job_list(*, user):
    return (
        Job.objects.filter(user=user)
        .select_related("kind")
        # A plain list per job (to_attr): a prefetch into the `files` manager would clone and
        # filter a queryset for every job of the page (~0.03 ms a row, bench/history_scale.py).
        .prefetch_related(
            Prefetch("files", queryset=JobFile.objects.order_by("created_at"), to_attr="listed_files")
        )
        .order_by("-created_at", "-id")
    )


def job_get(*, user, job_id) -> Job:
    job = job_list(user=user).filter(pk=job_id).first()
    if job is None:
        raise NotFound("Job not found.")
    return job


def job_as_listed(*, job: Job) -> Job:
    """A job this request has just created (kind and user loaded, no files stored), shaped like
    a `job_list` row without reading it back: its listed files are known to be none."""
    job.listed_files = []
    return job


def job_get_by_external_id(*, user, external_id: str) -> Job:
    """The caller's job with this external id. An id no job can have (NUL bytes, bad characters,
    too long) is simply not found: it never reaches the database."""
    from jobs.models import EXTERNAL_ID_MAX
    from jobs.serializers import EXTERNAL_ID_RE

    if not external_id or len(external_id) > EXTERNAL_ID_MAX or not EXTERNAL_ID_RE.fullmatch(external_id):
        raise NotFound("Job not found.")
    job = job_list(user=user).filter(external_id=external_id).first()
    if job is None:
        raise NotFound("Job not found.")
    return job


def _rate(successful: int, failed: int) -> float:
    finished = successful + failed
    return round(100.0 * successful / finished, 2) if finished else 0.0


def _utc_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def job_stats(*, user, date_from: date, date_to: date) -> dict:
    """Totals of the jobs `user` created between the two dates (inclusive, UTC), from the rollup:
    one index range scan over at most one row per day, whatever the number of jobs.

    success_rate is successful / (successful + failed) in percent (0 when nothing finished)."""
    totals = JobDailyStat.objects.filter(user=user, date__gte=date_from, date__lte=date_to).aggregate(
        jobs=Sum("jobs"),
        requested=Sum("requested"),
        successful=Sum("successful"),
        failed=Sum("failed"),
        credits_spent=Sum("credits_spent"),
        vault_items=Sum("vault_items"),
        completed=Sum("ended_completed"),
        ended_failed=Sum("ended_failed"),
    )
    totals = {key: int(value or 0) for key, value in totals.items()}
    return {
        "from": date_from,
        "to": date_to,
        "jobs": totals["jobs"],
        "requested": totals["requested"],
        "completed_jobs": totals["completed"],  # ended in the range
        "failed_jobs": totals["ended_failed"],
        "last_login": user.last_login,
        "successful": totals["successful"],
        "failed": totals["failed"],
        "success_rate": _rate(totals["successful"], totals["failed"]),
        "credits_spent": totals["credits_spent"],
        "vault_items": totals["vault_items"],
    }


DAILY_SQL = """
SELECT d::date, COALESCE(s.jobs, 0), COALESCE(s.requested, 0), COALESCE(s.successful, 0),
       COALESCE(s.failed, 0), COALESCE(s.credits_spent, 0), COALESCE(s.vault_items, 0)
  FROM generate_series(%s::date, %s::date, interval '1 day') AS d
  LEFT JOIN jobs_jobdailystat s ON s.user_id = %s AND s.date = d::date
 ORDER BY d
"""


def job_stats_daily(*, user, date_from: date, date_to: date) -> list[dict]:
    """One row per day in the range (days without jobs are zeros), for charts."""
    with connection.cursor() as cursor:
        cursor.execute(DAILY_SQL, [date_from, date_to, user.pk])
        rows = cursor.fetchall()
    return [
        {
            "date": r[0],
            "jobs": r[1],
            "requested": r[2],
            "successful": r[3],
            "failed": r[4],
            "success_rate": _rate(r[3], r[4]),
            "credits_spent": r[5],
            "vault_items": r[6],
        }
        for r in rows
    ]


def job_queue_status(*, now=None) -> dict:
    """Staff: jobs by status, and the average wait from queued to started over the last 24 h."""
    now = now or timezone.now()
    counts = {status: 0 for status in JobStatus.values}
    for row in Job.objects.order_by().values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    waits = Job.objects.filter(started_at__gte=now - timedelta(hours=24), queued_at__isnull=False).aggregate(
        avg=Avg(F("started_at") - F("queued_at"))
    )
    oldest = (
        Job.objects.filter(status=JobStatus.QUEUED, runs_on_engine=True)
        .order_by("queued_at")
        .values_list("queued_at", flat=True)
        .first()
    )
    avg = waits["avg"]
    return {
        "counts": counts,
        "average_wait_seconds": round(avg.total_seconds(), 3) if avg is not None else None,
        "oldest_queued_seconds": round((now - oldest).total_seconds(), 3) if oldest else None,
    }


def job_file_list(*, user, job_id):
    """The files of one of `user`'s jobs, oldest first; another user's job → NotFound (404)."""
    if not Job.objects.filter(pk=job_id, user=user).exists():
        raise NotFound("Job not found.")
    return JobFile.objects.filter(job_id=job_id).order_by("created_at", "id")


def job_file_get(*, user, job_id, file_id) -> JobFile:
    """One file of one of `user`'s jobs; anything else (another user's, another job's) → 404."""
    job_file = JobFile.objects.filter(pk=file_id, job_id=job_id, job__user=user).first()
    if job_file is None:
        raise NotFound("File not found.")
    return job_file


def artifact_list(*, user):
    """The user's vault: what their jobs produced, newest first."""
    from jobs.models import Artifact

    return (
        Artifact.objects.filter(user=user).select_related("job__kind", "file").order_by("-created_at", "-id")
    )
