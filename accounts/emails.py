"""Transactional email: rendered from templates/emails/, sent by a Celery worker after commit.

Each message is three templates: `<name>_subject.txt`, `<name>.txt` and `<name>.html`. The
request that causes an email only schedules it (`transaction.on_commit`), so a rolled-back
request sends nothing and a slow mail server never holds a web worker.
"""

import logging
from datetime import UTC

from celery import shared_task
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string

from config.failures import failure_report
from config.metrics import email_record
from config.outside_calls import outside_call

logger = logging.getLogger(__name__)


def email_render(*, template: str, context: dict) -> tuple[str, str, str]:
    """(subject, text, html) of `template` rendered with `context`."""
    context = {"site_name": settings.SITE_NAME, "frontend_url": settings.FRONTEND_URL, **context}
    subject = " ".join(render_to_string(f"emails/{template}_subject.txt", context).split())
    text = render_to_string(f"emails/{template}.txt", context)
    html = render_to_string(f"emails/{template}.html", context)
    return subject, text, html


def email_send(
    *, template: str, to: list[str], context: dict, attachments: list[tuple[str, bytes, str]] = ()
) -> None:
    """Render and send one message now (the Celery task calls this); `attachments` are
    (filename, content, mimetype) triples."""
    subject, text, html = email_render(template=template, context=context)
    message = EmailMultiAlternatives(
        subject=subject, body=text, from_email=settings.DEFAULT_FROM_EMAIL, to=to
    )
    message.attach_alternative(html, "text/html")
    for filename, content, mimetype in attachments:
        message.attach(filename, content, mimetype)
    # One usage row per message: the mail server (or the ESP behind anymail) is an outside service.
    try:
        with outside_call("email", template, units=len(to)):
            message.send()
    except Exception as exc:
        email_record(outcome="failed")
        failure_report(
            category="email",
            operation=f"email.{template}",
            step="send",
            error_code=type(exc).__name__,
            message=f"The {template} email could not be sent: {type(exc).__name__}",
        )
        raise
    email_record(outcome="sent")


# Every email task's options: a mail server that is down (OSError, smtplib's errors included)
# is retried with backoff for about an hour and a half; a message is small, so a minute is ample.
EMAIL_TASK_OPTIONS = {
    "queue": "default",
    "time_limit": 60,
    "soft_time_limit": 50,
    "autoretry_for": (OSError,),
    "retry_backoff": 30,
    "retry_backoff_max": 15 * 60,
    "max_retries": 8,
    "ignore_result": True,
}


def email_task_after_commit(task, *, kwargs: dict, what: str, **options) -> None:
    """Queue the email `task` with `kwargs` once the current transaction commits (a rolled-back
    transaction sends nothing). A broker that is down is logged (as `what`), never raised: the
    change the email tells of has already committed. `options` go to `apply_async`."""

    def enqueue():
        try:
            task.apply_async(kwargs=kwargs, **options)
        except Exception:
            logger.exception("could not queue the %s email", what)

    transaction.on_commit(enqueue)


def email_send_after_commit(*, template: str, to: list[str], context: dict) -> None:
    """Queue `template` for `to` once the current transaction commits.

    `context` must be JSON-serialisable (it travels through the broker).
    """
    email_task_after_commit(
        send_email,
        kwargs={"template": template, "to": to, "context": context},
        what=f"{template!r} to {len(to)} recipient(s)",
        # What workers log and monitors show: no address or context (personal data), and no
        # saferepr of the context on the sender's path.
        argsrepr="()",
        kwargsrepr=f"{{'template': {template!r}, 'to': <{len(to)} recipient(s)>}}",
    )


def utc_text(moment) -> str:
    """A moment as emails show it: `2026-12-04 17:25 UTC`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


@shared_task(name="accounts.send_email", **EMAIL_TASK_OPTIONS)
def send_email(*, template: str, to: list[str], context: dict) -> None:
    """Send one templated email; a mail server that is down (OSError, smtplib's errors included)
    is retried with backoff. Sending twice is the worst a redelivery can do."""
    email_send(template=template, to=to, context=context)
