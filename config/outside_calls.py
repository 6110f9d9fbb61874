"""Every call to an outside service (payment providers, Replicate, chat channels, email) is
measured by one helper, `outside_call`, and recorded as a usage row (jobs.models.ApiUsageLog):
provider, endpoint, status code, duration, units and cost where the provider states one.

    with outside_call("stripe", "checkout.sessions.create") as call:
        session = client.v1.checkout.sessions.create(...)
        call.status_code = 200  # optional: the status is read from the SDK's exception otherwise

The helper lives here, on the ground floor, so every app can wrap its calls (credits' payment
providers, accounts' email, shops' channels, jobs' workers) although the table belongs to `jobs`,
above most of them: the helper announces each finished call with the `outside_call_finished`
signal, and `jobs` (jobs.apps.JobsConfig.ready) records it. A failure to record is logged and
never breaks the call; the call's own exception is re-raised unchanged.

The row is written on the default connection: inside the caller's transaction when there is
one (a rolled-back transaction takes its usage row with it), so wrap calls that run outside
transactions, as outside calls should (the request commits first, then calls out).
"""

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal

from django.dispatch import Signal

logger = logging.getLogger(__name__)

# Sent once per finished call, with `call` (an OutsideCall). Receivers must not raise.
outside_call_finished = Signal()


@dataclass
class OutsideCall:
    """One call, filled in by the helper and, where it knows more, by the caller."""

    provider: str
    endpoint: str
    job_id: object = None
    units: int = 1
    cost: Decimal | None = None  # only what the provider states (e.g. Replicate's metrics)
    status_code: int | None = None
    succeeded: bool = True
    duration_ms: int = 0


def status_code_of(exc: BaseException) -> int | None:
    """The HTTP status an SDK's exception carries, when it carries one: Stripe's `http_status`,
    `status_code` (Razorpay, anymail), or the `response.status_code` of requests/httpx errors."""
    for value in (
        getattr(exc, "http_status", None),
        getattr(exc, "status_code", None),
        getattr(getattr(exc, "response", None), "status_code", None),
    ):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


@contextmanager
def outside_call(
    provider: str, endpoint: str, *, job_id=None, units: int = 1, cost: Decimal | None = None
) -> Iterator[OutsideCall]:
    """Measure one call to `provider`'s `endpoint` and record it when the block ends, whether
    it returned or raised (then `succeeded` is false and the status comes from the exception).
    The caller may set `status_code`, `units` and `cost` on the yielded OutsideCall."""
    call = OutsideCall(provider=provider, endpoint=endpoint, job_id=job_id, units=units, cost=cost)
    started = time.monotonic()
    try:
        yield call
    except BaseException as exc:
        call.succeeded = False
        if call.status_code is None:
            call.status_code = status_code_of(exc)
        raise
    finally:
        call.duration_ms = max(0, round((time.monotonic() - started) * 1000))
        for _, result in outside_call_finished.send_robust(sender=OutsideCall, call=call):
            if isinstance(result, Exception):
                logger.error("Could not record the %s call to %s: %r", provider, endpoint, result)
