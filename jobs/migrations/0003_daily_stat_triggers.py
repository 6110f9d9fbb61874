"""JobDailyStat kept in step with jobs and artifacts by deferred row triggers.

Deferred (INITIALLY DEFERRED constraint triggers): the per-day row is upserted at commit, after
the transaction's own locks (job row, credit balance), so the hot per-user-per-day row is held
only for the commit and never takes part in a lock-order cycle. Each trigger adds the
difference between the row's old and new contribution, so any write — ORM, raw SQL, admin —
keeps the rollup exact. `jobs.selectors.job_daily_stats_rebuild` recomputes it set-based.
"""

from django.db import migrations

SQL = r"""
CREATE OR REPLACE FUNCTION jobs_daily_stat_add(p_user uuid, p_date date, d_jobs bigint, d_req bigint,
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

CREATE CONSTRAINT TRIGGER jobs_job_daily_stat_ins AFTER INSERT ON jobs_job
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION jobs_job_daily_stat();
CREATE CONSTRAINT TRIGGER jobs_job_daily_stat_del AFTER DELETE ON jobs_job
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION jobs_job_daily_stat();
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

CREATE OR REPLACE FUNCTION jobs_artifact_job_date() RETURNS trigger AS $$
BEGIN
    SELECT (created_at AT TIME ZONE 'UTC')::date INTO NEW.job_date FROM jobs_job WHERE id = NEW.job_id;
    RETURN NEW;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER jobs_artifact_job_date BEFORE INSERT ON jobs_artifact
    FOR EACH ROW EXECUTE FUNCTION jobs_artifact_job_date();

CREATE OR REPLACE FUNCTION jobs_artifact_daily_stat() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM jobs_daily_stat_add(NEW.user_id, NEW.job_date, 0, 0, 0, 0, 0, 1);
    ELSE
        PERFORM jobs_daily_stat_add(OLD.user_id, OLD.job_date, 0, 0, 0, 0, 0, -1);
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE CONSTRAINT TRIGGER jobs_artifact_daily_stat AFTER INSERT OR DELETE ON jobs_artifact
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION jobs_artifact_daily_stat();
"""

REVERSE_SQL = r"""
DROP TRIGGER IF EXISTS jobs_artifact_daily_stat ON jobs_artifact;
DROP FUNCTION IF EXISTS jobs_artifact_daily_stat();
DROP TRIGGER IF EXISTS jobs_artifact_job_date ON jobs_artifact;
DROP FUNCTION IF EXISTS jobs_artifact_job_date();
DROP TRIGGER IF EXISTS jobs_job_daily_stat_upd ON jobs_job;
DROP TRIGGER IF EXISTS jobs_job_daily_stat_del ON jobs_job;
DROP TRIGGER IF EXISTS jobs_job_daily_stat_ins ON jobs_job;
DROP FUNCTION IF EXISTS jobs_job_daily_stat();
DROP FUNCTION IF EXISTS jobs_daily_stat_add(uuid, date, bigint, bigint, bigint, bigint, bigint, bigint);
"""


class Migration(migrations.Migration):
    dependencies = [("jobs", "0002_seed_job_kinds")]
    operations = [migrations.RunSQL(SQL, REVERSE_SQL)]
