"""A job's status changes only through `jobs.services.job_transition` (docs/ARCHITECTURE.md, step 2).

Chosen over django-fsm-2's protected field because it holds for every writer, not only
`Model.save()`: a queryset `update()`, raw SQL and the engine's CLAIM_SQL all go through it.
`job_transition` authorises exactly one row for the rest of its transaction with
`set_config('jobs.transition', '<job id>', true)` (transaction-local, gone at commit or
rollback, and consumed by the one status write it allows); the engine's claim and start
statements authorise `*` inside their own one-statement transactions.
Anything else that changes `status`, or inserts a job in any status but `pending`, is refused.
"""

from django.db import migrations

SQL = r"""
CREATE OR REPLACE FUNCTION jobs_job_status_guard() RETURNS trigger AS $$
DECLARE
    allowed text := coalesce(current_setting('jobs.transition', true), '');
BEGIN
    IF allowed = '*' THEN
        RETURN NEW;
    END IF;
    IF allowed = NEW.id::text THEN
        -- one write, one authorisation: later writes in the same transaction need their own
        PERFORM set_config('jobs.transition', '', true);
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'jobs_job.status changes only through jobs.services.job_transition (job %: % -> %)',
        NEW.id, CASE WHEN TG_OP = 'UPDATE' THEN OLD.status ELSE '(new)' END, NEW.status
        USING ERRCODE = 'insufficient_privilege';
END $$ LANGUAGE plpgsql;

CREATE TRIGGER jobs_job_status_guard_upd BEFORE UPDATE OF status ON jobs_job
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION jobs_job_status_guard();
CREATE TRIGGER jobs_job_status_guard_ins BEFORE INSERT ON jobs_job
    FOR EACH ROW WHEN (NEW.status <> 'pending') EXECUTE FUNCTION jobs_job_status_guard();
"""

REVERSE_SQL = r"""
DROP TRIGGER IF EXISTS jobs_job_status_guard_ins ON jobs_job;
DROP TRIGGER IF EXISTS jobs_job_status_guard_upd ON jobs_job;
DROP FUNCTION IF EXISTS jobs_job_status_guard();
"""


class Migration(migrations.Migration):
    dependencies = [("jobs", "0007_one_retry_per_job")]
    operations = [migrations.RunSQL(SQL, REVERSE_SQL)]
