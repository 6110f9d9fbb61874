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


def error_fingerprint(*, message: str, stack: str) -> str:
    """sha256 of the message and the top stack frames with numbers, hex and UUIDs masked, so the
    same bug seen with different ids, line/column offsets or timings groups into one row."""
    frames = [line.strip() for line in stack.splitlines() if line.strip()][:STACK_FRAMES]
    text = "\n".join([message.strip(), *frames]).lower()
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
) -> ErrorLog:
    """Record one client error: a new group, or one more occurrence of its fingerprint's group.

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
        )
    }
    statement = f"""
INSERT INTO {table} (id, {f["fingerprint"]}, {f["message"]}, {f["stack"]}, {f["url"]}, {f["user_agent"]},
                     {f["severity"]}, {f["context"]}, {f["user"]}, {f["occurrences"]}, {f["first_seen"]},
                     {f["last_seen"]}, created_at, updated_at)
VALUES (gen_random_uuid(), %(fp)s, %(message)s, %(stack)s, %(url)s, %(ua)s, %(severity)s, %(context)s::jsonb,
        %(user)s, 1, %(now)s, %(now)s, %(now)s, %(now)s)
ON CONFLICT ({f["fingerprint"]}) DO UPDATE SET
    {f["occurrences"]} = {table}.{f["occurrences"]} + 1,
    {f["last_seen"]} = GREATEST({table}.{f["last_seen"]}, EXCLUDED.{f["last_seen"]}),
    {f["url"]} = EXCLUDED.{f["url"]}, {f["user_agent"]} = EXCLUDED.{f["user_agent"]},
    {f["severity"]} = EXCLUDED.{f["severity"]}, {f["context"]} = EXCLUDED.{f["context"]},
    {f["user"]} = EXCLUDED.{f["user"]}, {f["resolved_at"]} = NULL, {f["resolved_by"]} = NULL,
    updated_at = EXCLUDED.updated_at
RETURNING id"""
    with connection.cursor() as cursor:
        cursor.execute(
            statement,
            {
                "fp": error_fingerprint(message=message, stack=stack),
                "message": message,
                "stack": stack,
                "url": url,
                "ua": user_agent,
                "severity": severity,
                "context": json.dumps(context or {}),
                "user": user.pk if user is not None else None,
                "now": now,
            },
        )
        pk = cursor.fetchone()[0]
    return ErrorLog.objects.get(pk=pk)


@transaction.atomic
def error_log_resolve(*, error_log: ErrorLog, user) -> ErrorLog:
    """Mark a group resolved (staff, from the admin); a later occurrence reopens it."""
    error_log.resolved_at = timezone.now()
    error_log.resolved_by = user
    error_log.save(update_fields=["resolved_at", "resolved_by", "updated_at"])
    return error_log
