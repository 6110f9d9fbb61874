import django_filters

from config.filters import DateRangeFilterSet
from jobs.models import Artifact, Job
from jobs.states import JobStatus


class JobFilter(DateRangeFilterSet):
    """`?status=&kind=&from=YYYY-MM-DD&to=YYYY-MM-DD` (dates inclusive, UTC, on created_at)."""

    status = django_filters.ChoiceFilter(choices=JobStatus.choices)
    kind = django_filters.CharFilter(field_name="kind__code", max_length=64)

    class Meta:
        model = Job
        fields: list[str] = []


class ArtifactFilter(DateRangeFilterSet):
    """The vault: `?type=&kind=&job=&from=YYYY-MM-DD&to=YYYY-MM-DD` (dates inclusive, UTC)."""

    type = django_filters.CharFilter(field_name="type", max_length=32)
    kind = django_filters.CharFilter(field_name="job__kind__code", max_length=64)
    job = django_filters.UUIDFilter(field_name="job_id")

    class Meta:
        model = Artifact
        fields: list[str] = []
