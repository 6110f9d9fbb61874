"""The status guard authorises a set of job ids, each consumed by its one write; no wildcard.

`jobs.transition` (transaction-local) now holds a comma-separated list of job ids. A status
write (or a non-pending insert) of a job in the list consumes that id; any other is refused.
`job_transition` adds the one job it moves; the engine's claim, start and one-statement
completion add exactly the ids they lock and update, in the same statement (jobs/engine.py).
The `'*'` wildcard of 0008 is gone: it is an id like any other, which no job has.
"""

from django.db import migrations

SQL = r"""
CREATE OR REPLACE FUNCTION jobs_job_status_guard() RETURNS trigger AS $$
DECLARE
    allowed text[] := string_to_array(coalesce(current_setting('jobs.transition', true), ''), ',');
BEGIN
    IF NEW.id::text = ANY(allowed) THEN
        -- one write, one authorisation: a later write of the same job needs its own
        PERFORM set_config('jobs.transition', array_to_string(array_remove(allowed, NEW.id::text), ','), true);
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'jobs_job.status changes only through jobs.services.job_transition (job %: % -> %)',
        NEW.id, CASE WHEN TG_OP = 'UPDATE' THEN OLD.status ELSE '(new)' END, NEW.status
        USING ERRCODE = 'insufficient_privilege';
END $$ LANGUAGE plpgsql;
"""

# 0008's function, wildcard included.
REVERSE_SQL = r"""
CREATE OR REPLACE FUNCTION jobs_job_status_guard() RETURNS trigger AS $$
DECLARE
    allowed text := coalesce(current_setting('jobs.transition', true), '');
BEGIN
    IF allowed = '*' THEN
        RETURN NEW;
    END IF;
    IF allowed = NEW.id::text THEN
        PERFORM set_config('jobs.transition', '', true);
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'jobs_job.status changes only through jobs.services.job_transition (job %: % -> %)',
        NEW.id, CASE WHEN TG_OP = 'UPDATE' THEN OLD.status ELSE '(new)' END, NEW.status
        USING ERRCODE = 'insufficient_privilege';
END $$ LANGUAGE plpgsql;
"""


class Migration(migrations.Migration):
    dependencies = [("jobs", "0011_list_indexes_and_daily_stat_ended")]
    operations = [migrations.RunSQL(SQL, REVERSE_SQL)]
