"""The client error log: occurrences grouped by fingerprint."""

import hashlib
import json
import re

from django.db import connection, transaction
from django.utils import timezone

from analytics import sql
from analytics.models import ErrorLog

_VOLATILE = re.compile(r"0x[0-9a-f]+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\d+", re.I)
STACK_FRAMES = 3  # the top frames that identify where an error was thrown


def error_fingerprint(*, message: str, stack: str, where: tuple[str, ...] = ()) -> str:
    """sha256 of the message and the top stack frames with numbers, hex and UUIDs masked, so the
    same bug seen with different ids, line/column offsets or timings groups into one row. `where`
    (a server failure's category, operation, step and error code) is part of it: the same message
    from two operations is two groups."""
    frames = [line.strip() for line in stack.splitlines() if line.strip()][:STACK_FRAMES]
    text = "\n".join([*(w for w in where if w), message.strip(), *frames]).lower()
    return hashlib.sha256(_VOLATILE.sub("#", text).encode()).hexdigest()


@transaction.atomic
def error_log_record(
    *,
    message: str,
    stack: str = "",
    url: str = "",
    user_agent: str = "",
    severity: str = ErrorLog.Severity.ERROR,
    context: dict | None = None,
    user=None,
    user_id=None,
    category: str = ErrorLog.Category.CLIENT,
    error_code: str = "",
    operation: str = "",
    step: str = "",
    job_id=None,
    payment_id=None,
    project_id=None,
) -> ErrorLog:
    """Record one error (a client's report, or a server failure with its category, operation,
    step, error code and links): a new group, or one more occurrence of its fingerprint's group.

    One `INSERT … ON CONFLICT (fingerprint) DO UPDATE`, so concurrent reports of the same error
    never lose a count. A new occurrence of a resolved group reopens it. The group keeps the
    latest url, user agent, severity, context and user.
    """
    now = timezone.now()
    table = sql.t(ErrorLog)
    f = {
        n: f'"{ErrorLog._meta.get_field(n).column}"'
        for n in (
            "fingerprint",
            "message",
            "stack",
            "url",
            "user_agent",
            "severity",
            "context",
            "user",
            "occurrences",
            "first_seen",
            "last_seen",
            "resolved_at",
            "resolved_by",
            "category",
            "error_code",
            "operation",
            "step",
            "job",
            "payment",
            "project",
        )
    }
    statement = f"""
INSERT INTO {table} (id, {f["fingerprint"]}, {f["message"]}, {f["stack"]}, {f["url"]}, {f["user_agent"]},
                     {f["severity"]}, {f["context"]}, {f["user"]}, {f["occurrences"]}, {f["first_seen"]},
                     {f["last_seen"]}, created_at, updated_at, {f["category"]}, {f["error_code"]},
                     {f["operation"]}, {f["step"]}, {f["job"]}, {f["payment"]}, {f["project"]})
VALUES (gen_random_uuid(), %(fp)s, %(message)s, %(stack)s, %(url)s, %(ua)s, %(severity)s, %(context)s::jsonb,
        %(user)s, 1, %(now)s, %(now)s, %(now)s, %(now)s, %(category)s, %(error_code)s, %(operation)s,
        %(step)s, %(job)s, %(payment)s, %(project)s)
ON CONFLICT ({f["fingerprint"]}) DO UPDATE SET
    {f["occurrences"]} = {table}.{f["occurrences"]} + 1,
    {f["last_seen"]} = GREATEST({table}.{f["last_seen"]}, EXCLUDED.{f["last_seen"]}),
    {f["url"]} = EXCLUDED.{f["url"]}, {f["user_agent"]} = EXCLUDED.{f["user_agent"]},
    {f["severity"]} = EXCLUDED.{f["severity"]}, {f["context"]} = EXCLUDED.{f["context"]},
    {f["user"]} = EXCLUDED.{f["user"]}, {f["resolved_at"]} = NULL, {f["resolved_by"]} = NULL,
    {f["job"]} = EXCLUDED.{f["job"]}, {f["payment"]} = EXCLUDED.{f["payment"]},
    {f["project"]} = EXCLUDED.{f["project"]},
    updated_at = EXCLUDED.updated_at
RETURNING id"""
    with connection.cursor() as cursor:
        cursor.execute(
            statement,
            {
                "fp": error_fingerprint(
                    message=message, stack=stack, where=(category, operation, step, error_code)
                ),
                "category": category,
                "error_code": error_code[:64],
                "operation": operation[:100],
                "step": step[:100],
                "job": job_id,
                "payment": payment_id,
                "project": project_id,
                "message": message,
                "stack": stack,
                "url": url,
                "ua": user_agent,
                "severity": severity,
                "context": json.dumps(context or {}),
                "user": user.pk if user is not None else user_id,
                "now": now,
            },
        )
        pk = cursor.fetchone()[0]
    return ErrorLog.objects.get(pk=pk)


@transaction.atomic
def error_log_resolve(*, error_log: ErrorLog, user, resolution: str = "") -> ErrorLog:
    """Mark a group resolved (staff, from the admin) with what was done about it; a later
    occurrence reopens it (the resolution text stays, for the record)."""
    error_log.resolved_at = timezone.now()
    error_log.resolved_by = user
    fields = ["resolved_at", "resolved_by", "updated_at"]
    if resolution:
        error_log.resolution = resolution[:4000]
        fields.append("resolution")
    error_log.save(update_fields=fields)
    return error_log


# What a server failure's severity may be called by the code reporting it, and the contract's
# client severities: the upper-case levels LOW…CRITICAL map onto them.
SEVERITY_ALIASES = {"low": "info", "medium": "warning", "high": "error", "critical": "critical"}


def error_severity(value: str) -> str:
    """`debug|info|warning|error|critical`, or LOW/MEDIUM/HIGH/CRITICAL (any case) mapped to
    info/warning/error/critical. Raises ValueError for anything else."""
    text = str(value).strip().lower()
    text = SEVERITY_ALIASES.get(text, text)
    if text not in ErrorLog.Severity.values:
        raise ValueError(f"Unknown severity {value!r}.")
    return text


def on_server_failure(
    sender, *, signal=None, severity: str = "error", context=None, message: str = "", **fields
) -> None:
    """Receiver of config.failures.server_failure: one occurrence in the error log."""
    try:
        severity = error_severity(severity)
    except ValueError:
        severity = ErrorLog.Severity.ERROR
    error_log_record(message=message[:2000] or "(no message)", severity=severity, context=context, **fields)
