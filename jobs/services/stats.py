"""The per-day stats rollup (JobDailyStat), kept by deferred triggers; rebuilt here on demand."""

from django.db import connection, transaction

from jobs.models import Artifact, Job, JobDailyStat

REBUILD_SQL = """
INSERT INTO {stat} (user_id, date, jobs, requested, successful, failed, credits_spent, vault_items,
                    ended_completed, ended_failed)
SELECT user_id, date, sum(jobs), sum(requested), sum(successful), sum(failed), sum(credits_spent),
       sum(vault_items), sum(ended_completed), sum(ended_failed)
  FROM (SELECT user_id, (created_at AT TIME ZONE 'UTC')::date AS date, count(*) AS jobs,
               sum(requested_count) AS requested, sum(successful_count) AS successful,
               sum(failed_count) AS failed, sum(credits_charged - credits_refunded) AS credits_spent,
               0 AS vault_items, 0 AS ended_completed, 0 AS ended_failed
          FROM {job} {job_where} GROUP BY 1, 2
        UNION ALL
        SELECT user_id, job_date, 0, 0, 0, 0, 0, count(*), 0, 0 FROM {artifact} {artifact_where} GROUP BY 1, 2
        UNION ALL
        SELECT user_id, (completed_at AT TIME ZONE 'UTC')::date, 0, 0, 0, 0, 0, 0,
               count(*) FILTER (WHERE status = 'completed'), count(*) FILTER (WHERE status = 'failed')
          FROM {job} WHERE status IN ('completed', 'failed') AND completed_at IS NOT NULL {ended_and}
         GROUP BY 1, 2) t
 GROUP BY user_id, date
"""


@transaction.atomic
def job_daily_stats_rebuild(*, user_id=None) -> int:
    """Recompute JobDailyStat from jobs and artifacts with set-based SQL (after a bulk load
    with the triggers disabled, or to repair). Locks the jobs and artifacts tables against
    writes (SHARE mode) so no change slips between the recount and the new rows."""
    job, artifact, stat = Job._meta.db_table, Artifact._meta.db_table, JobDailyStat._meta.db_table
    where, args = ("WHERE user_id = %s", [user_id]) if user_id else ("", [])
    with connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {job}, {artifact} IN SHARE MODE")
        cursor.execute(f"DELETE FROM {stat} {where}", args)
        cursor.execute(
            REBUILD_SQL.format(
                stat=stat,
                job=job,
                artifact=artifact,
                job_where=where,
                artifact_where=where,
                ended_and="AND user_id = %s" if user_id else "",
            ),
            args * 3,
        )
        return cursor.rowcount
