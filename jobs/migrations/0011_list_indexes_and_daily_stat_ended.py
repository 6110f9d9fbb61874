"""List indexes ending with the id (keyset pages are index range scans), and JobDailyStat's
ended_completed / ended_failed: per user and UTC day of completed_at, kept by the same deferred
trigger as the rest of the rollup, so /api/stats never counts jobs (issue 14)."""

from django.conf import settings
from django.db import migrations, models

# The 8-argument adder becomes a 10-argument one (the two new deltas default to 0, so the
# artifact trigger's calls keep working); dropped first, or the calls would be ambiguous.
SQL = r"""
DROP FUNCTION IF EXISTS jobs_daily_stat_add(uuid, date, bigint, bigint, bigint, bigint, bigint, bigint);
DROP FUNCTION IF EXISTS jobs_daily_stat_add(uuid, date, bigint, bigint, bigint, bigint, bigint, bigint,
                                            bigint, bigint);
CREATE FUNCTION jobs_daily_stat_add(p_user uuid, p_date date, d_jobs bigint, d_req bigint,
    d_succ bigint, d_fail bigint, d_cred bigint, d_vault bigint,
    d_ended_completed bigint DEFAULT 0, d_ended_failed bigint DEFAULT 0) RETURNS void AS $$
BEGIN
    IF d_jobs = 0 AND d_req = 0 AND d_succ = 0 AND d_fail = 0 AND d_cred = 0 AND d_vault = 0
       AND d_ended_completed = 0 AND d_ended_failed = 0 THEN
        RETURN;
    END IF;
    INSERT INTO jobs_jobdailystat AS s (user_id, date, jobs, requested, successful, failed, credits_spent,
                                        vault_items, ended_completed, ended_failed)
    VALUES (p_user, p_date, d_jobs, d_req, d_succ, d_fail, d_cred, d_vault, d_ended_completed, d_ended_failed)
    ON CONFLICT (user_id, date) DO UPDATE SET
        jobs = s.jobs + EXCLUDED.jobs, requested = s.requested + EXCLUDED.requested,
        successful = s.successful + EXCLUDED.successful, failed = s.failed + EXCLUDED.failed,
        credits_spent = s.credits_spent + EXCLUDED.credits_spent,
        vault_items = s.vault_items + EXCLUDED.vault_items,
        ended_completed = s.ended_completed + EXCLUDED.ended_completed,
        ended_failed = s.ended_failed + EXCLUDED.ended_failed;
END $$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION jobs_job_daily_stat() RETURNS trigger AS $$
BEGIN
    -- The ended counts, on the UTC day of completed_at: the old contribution out, the new in.
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.status IN ('completed', 'failed') AND OLD.completed_at IS NOT NULL THEN
        PERFORM jobs_daily_stat_add(OLD.user_id, (OLD.completed_at AT TIME ZONE 'UTC')::date, 0, 0, 0, 0, 0, 0,
            -(OLD.status = 'completed')::int::bigint, -(OLD.status = 'failed')::int::bigint);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.status IN ('completed', 'failed') AND NEW.completed_at IS NOT NULL THEN
        PERFORM jobs_daily_stat_add(NEW.user_id, (NEW.completed_at AT TIME ZONE 'UTC')::date, 0, 0, 0, 0, 0, 0,
            (NEW.status = 'completed')::int::bigint, (NEW.status = 'failed')::int::bigint);
    END IF;
    -- The created-day totals, as in migration 0003.
    IF TG_OP = 'UPDATE' AND OLD.user_id = NEW.user_id AND OLD.created_at = NEW.created_at THEN
        PERFORM jobs_daily_stat_add(NEW.user_id, (NEW.created_at AT TIME ZONE 'UTC')::date, 0,
            NEW.requested_count::bigint - OLD.requested_count,
            NEW.successful_count::bigint - OLD.successful_count,
            NEW.failed_count::bigint - OLD.failed_count,
            (NEW.credits_charged::bigint - NEW.credits_refunded) - (OLD.credits_charged::bigint - OLD.credits_refunded), 0);
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM jobs_daily_stat_add(OLD.user_id, (OLD.created_at AT TIME ZONE 'UTC')::date, -1,
            -OLD.requested_count::bigint, -OLD.successful_count::bigint, -OLD.failed_count::bigint,
            -(OLD.credits_charged::bigint - OLD.credits_refunded), 0);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        PERFORM jobs_daily_stat_add(NEW.user_id, (NEW.created_at AT TIME ZONE 'UTC')::date, 1,
            NEW.requested_count::bigint, NEW.successful_count::bigint, NEW.failed_count::bigint,
            NEW.credits_charged::bigint - NEW.credits_refunded, 0);
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

DROP TRIGGER jobs_job_daily_stat_upd ON jobs_job;
CREATE CONSTRAINT TRIGGER jobs_job_daily_stat_upd AFTER UPDATE ON jobs_job
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (OLD.requested_count IS DISTINCT FROM NEW.requested_count
          OR OLD.successful_count IS DISTINCT FROM NEW.successful_count
          OR OLD.failed_count IS DISTINCT FROM NEW.failed_count
          OR OLD.credits_charged IS DISTINCT FROM NEW.credits_charged
          OR OLD.credits_refunded IS DISTINCT FROM NEW.credits_refunded
          OR OLD.user_id IS DISTINCT FROM NEW.user_id
          OR OLD.created_at IS DISTINCT FROM NEW.created_at
          OR ((OLD.status IN ('completed', 'failed') OR NEW.status IN ('completed', 'failed'))
              AND (OLD.status IS DISTINCT FROM NEW.status OR OLD.completed_at IS DISTINCT FROM NEW.completed_at)))
    EXECUTE FUNCTION jobs_job_daily_stat();

-- Backfill the ended counts of existing jobs.
INSERT INTO jobs_jobdailystat AS s (user_id, date, jobs, requested, successful, failed, credits_spent,
                                    vault_items, ended_completed, ended_failed)
SELECT user_id, (completed_at AT TIME ZONE 'UTC')::date, 0, 0, 0, 0, 0, 0,
       count(*) FILTER (WHERE status = 'completed'), count(*) FILTER (WHERE status = 'failed')
  FROM jobs_job WHERE status IN ('completed', 'failed') AND completed_at IS NOT NULL
 GROUP BY 1, 2
ON CONFLICT (user_id, date) DO UPDATE SET
    ended_completed = EXCLUDED.ended_completed, ended_failed = EXCLUDED.ended_failed;
"""

REVERSE_SQL = r"""
DROP FUNCTION jobs_daily_stat_add(uuid, date, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint);
CREATE FUNCTION jobs_daily_stat_add(p_user uuid, p_date date, d_jobs bigint, d_req bigint,
    d_succ bigint, d_fail bigint, d_cred bigint, d_vault bigint) RETURNS void AS $$
BEGIN
    IF d_jobs = 0 AND d_req = 0 AND d_succ = 0 AND d_fail = 0 AND d_cred = 0 AND d_vault = 0 THEN
        RETURN;
    END IF;
    INSERT INTO jobs_jobdailystat AS s (user_id, date, jobs, requested, successful, failed, credits_spent, vault_items)
    VALUES (p_user, p_date, d_jobs, d_req, d_succ, d_fail, d_cred, d_vault)
    ON CONFLICT (user_id, date) DO UPDATE SET
        jobs = s.jobs + EXCLUDED.jobs, requested = s.requested + EXCLUDED.requested,
        successful = s.successful + EXCLUDED.successful, failed = s.failed + EXCLUDED.failed,
        credits_spent = s.credits_spent + EXCLUDED.credits_spent,
        vault_items = s.vault_items + EXCLUDED.vault_items;
END $$ LANGUAGE plpgsql;
CREATE OR REPLACE FUNCTION jobs_job_daily_stat() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.user_id = NEW.user_id AND OLD.created_at = NEW.created_at THEN
        PERFORM jobs_daily_stat_add(NEW.user_id, (NEW.created_at AT TIME ZONE 'UTC')::date, 0,
            NEW.requested_count::bigint - OLD.requested_count,
            NEW.successful_count::bigint - OLD.successful_count,
            NEW.failed_count::bigint - OLD.failed_count,
            (NEW.credits_charged::bigint - NEW.credits_refunded) - (OLD.credits_charged::bigint - OLD.credits_refunded), 0);
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM jobs_daily_stat_add(OLD.user_id, (OLD.created_at AT TIME ZONE 'UTC')::date, -1,
            -OLD.requested_count::bigint, -OLD.successful_count::bigint, -OLD.failed_count::bigint,
            -(OLD.credits_charged::bigint - OLD.credits_refunded), 0);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        PERFORM jobs_daily_stat_add(NEW.user_id, (NEW.created_at AT TIME ZONE 'UTC')::date, 1,
            NEW.requested_count::bigint, NEW.successful_count::bigint, NEW.failed_count::bigint,
            NEW.credits_charged::bigint - NEW.credits_refunded, 0);
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;
DROP TRIGGER jobs_job_daily_stat_upd ON jobs_job;
CREATE CONSTRAINT TRIGGER jobs_job_daily_stat_upd AFTER UPDATE ON jobs_job
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (OLD.requested_count IS DISTINCT FROM NEW.requested_count
          OR OLD.successful_count IS DISTINCT FROM NEW.successful_count
          OR OLD.failed_count IS DISTINCT FROM NEW.failed_count
          OR OLD.credits_charged IS DISTINCT FROM NEW.credits_charged
          OR OLD.credits_refunded IS DISTINCT FROM NEW.credits_refunded
          OR OLD.user_id IS DISTINCT FROM NEW.user_id
          OR OLD.created_at IS DISTINCT FROM NEW.created_at)
    EXECUTE FUNCTION jobs_job_daily_stat();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0010_model_lifecycle_exports_projects"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="jobdailystat",
            name="ended_completed",
            field=models.BigIntegerField(db_default=0, default=0),
        ),
        migrations.AddField(
            model_name="jobdailystat",
            name="ended_failed",
            field=models.BigIntegerField(db_default=0, default=0),
        ),
        # The reverse restores 0003's functions and update trigger.
        migrations.RunSQL(SQL, REVERSE_SQL),
        migrations.RemoveIndex(
            model_name="artifact",
            name="jobs_artifa_user_id_a80317_idx",
        ),
        migrations.RemoveIndex(
            model_name="job",
            name="job_user_created",
        ),
        migrations.RemoveIndex(
            model_name="job",
            name="job_user_status",
        ),
        migrations.RemoveIndex(
            model_name="job",
            name="job_user_kind",
        ),
        migrations.AddIndex(
            model_name="artifact",
            index=models.Index(fields=["user", "-created_at", "-id"], name="artifact_user_created"),
        ),
        migrations.AddIndex(
            model_name="job",
            index=models.Index(fields=["user", "-created_at", "-id"], name="job_user_created"),
        ),
        migrations.AddIndex(
            model_name="job",
            index=models.Index(fields=["user", "status", "-created_at", "-id"], name="job_user_status"),
        ),
        migrations.AddIndex(
            model_name="job",
            index=models.Index(fields=["user", "kind", "-created_at", "-id"], name="job_user_kind"),
        ),
    ]
