"""Filter sets shared by the apps' list endpoints."""

from datetime import UTC, date, datetime, time, timedelta

import django_filters


class DateRangeFilterSet(django_filters.FilterSet):
    """`?from=YYYY-MM-DD&to=YYYY-MM-DD`, both inclusive, whole UTC days, on the
    subclass's `date_field` (default `created_at`).

    Compared as a half-open range on the timestamp rather than on its ::date, so an index on
    (owner, timestamp) serves it.
    """

    date_field = "created_at"

    # `from` is a Python keyword, hence the locals() spelling for the public parameter name.
    locals()["from"] = django_filters.DateFilter(method="filter_from", label="from (YYYY-MM-DD, inclusive)")
    to = django_filters.DateFilter(method="filter_to", label="to (YYYY-MM-DD, inclusive)")

    def filter_from(self, queryset, name, value):
        return queryset.filter(**{f"{self.date_field}__gte": _utc_midnight(value)})

    def filter_to(self, queryset, name, value):
        if value >= date.max:  # 9999-12-31: "up to the end of time", the day after overflows
            return queryset
        return queryset.filter(**{f"{self.date_field}__lt": _utc_midnight(value + timedelta(days=1))})


def _utc_midnight(day) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)
