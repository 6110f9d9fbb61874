"""The server's own failures (an import or export that failed for good, a payment provider that
refused, an email that could not be sent, a scheduled run that failed, a channel delivery) are
reported with `failure_report(...)` from whichever app they happen in, and recorded in the error
log (analytics.models.ErrorLog) grouped by fingerprint like client reports.

Like `config.outside_calls`, this sits on the ground floor so apps below `analytics` can report
without importing it: the helper sends `server_failure`, and analytics
(analytics.apps.AnalyticsConfig.ready) records it. Reporting never raises: a failure to record
is logged.
"""

import logging

from django.dispatch import Signal

logger = logging.getLogger(__name__)

# Sent once per failure with the keyword arguments of `failure_report`. Receivers must not raise.
server_failure = Signal()

CATEGORIES = ("import", "export", "payment", "email", "channel", "schedule", "job", "other")


def failure_report(
    *,
    category: str,
    operation: str,
    message: str,
    error_code: str = "",
    step: str = "",
    severity: str = "error",
    user_id=None,
    job_id=None,
    payment_id=None,
    project_id=None,
    context: dict | None = None,
) -> None:
    """Record one failure of the server's own work: what failed (`category`, `operation`, `step`,
    `error_code`), why (`message`, without secrets: it is shown to staff) and what it concerned
    (user, job, payment, project ids)."""
    if category not in CATEGORIES:
        category = "other"
    for _, result in server_failure.send_robust(
        sender=None,
        category=category,
        operation=operation,
        message=message,
        error_code=error_code,
        step=step,
        severity=severity,
        user_id=user_id,
        job_id=job_id,
        payment_id=payment_id,
        project_id=project_id,
        context=context or {},
    ):
        if isinstance(result, Exception):
            logger.error("Could not record the %s failure of %s: %r", category, operation, result)
