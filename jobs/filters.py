import django_filters

from jobs.models import Job
from jobs.states import JobStatus


class JobFilter(django_filters.FilterSet):
    """`?status=&kind=&from=YYYY-MM-DD&to=YYYY-MM-DD` (dates inclusive, UTC, on created_at)."""

    status = django_filters.ChoiceFilter(choices=JobStatus.choices)
    kind = django_filters.CharFilter(field_name="kind__code", max_length=64)
    date_from = django_filters.DateFilter(field_name="created_at", lookup_expr="date__gte")
    date_to = django_filters.DateFilter(field_name="created_at", lookup_expr="date__lte")

    class Meta:
        model = Job
        fields: list[str] = []

    def __init__(self, data=None, *args, **kwargs):
        if data is not None:
            data = data.copy()
            for public, internal in (("from", "date_from"), ("to", "date_to")):
                if public in data:
                    data[internal] = data.pop(public)[-1] if hasattr(data, "getlist") else data.pop(public)
        super().__init__(data, *args, **kwargs)

