"""Recording outside calls (config.outside_calls) as ApiUsageLog rows, and reading their cost."""

from datetime import date

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate

from config.outside_calls import OutsideCall
from jobs.models import ApiUsageLog


def api_usage_record(*, call: OutsideCall) -> ApiUsageLog:
    """One row for one finished call (the receiver of `outside_call_finished`)."""
    return ApiUsageLog.objects.create(
        job_id=call.job_id,
        provider=call.provider[:64],
        endpoint=call.endpoint[:255],
        units=max(0, int(call.units)),
        cost=call.cost,
        duration_ms=call.duration_ms,
        status_code=call.status_code
        if call.status_code is not None and 0 <= call.status_code < 1000
        else None,
        succeeded=call.succeeded,
    )


def on_outside_call_finished(sender, *, call: OutsideCall, **kwargs) -> None:
    api_usage_record(call=call)


def api_cost_by_provider_and_day(*, date_from: date, date_to: date) -> list[dict]:
    """[{day, provider, calls, failed, cost}] over [date_from, date_to] (UTC, inclusive), oldest
    day first; `cost` sums what providers stated (None when none stated a cost that day)."""
    return list(
        ApiUsageLog.objects.filter(created_at__date__gte=date_from, created_at__date__lte=date_to)
        .annotate(day=TruncDate("created_at"))
        .values("day", "provider")
        .annotate(calls=Count("id"), failed=Count("id", filter=Q(succeeded=False)), cost=Sum("cost"))
        .order_by("day", "provider")
    )
