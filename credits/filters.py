from datetime import UTC, datetime, time, timedelta

import django_filters

from credits.models import CreditTransaction, Payment


class DateRangeFilterSet(django_filters.FilterSet):
    """`?from=YYYY-MM-DD&to=YYYY-MM-DD`, both inclusive, whole UTC days (SPEC §2).

    Compared as a half-open range on created_at rather than created_at::date so the
    (user, created_at) index serves it.
    """

    locals()["from"] = django_filters.DateFilter(method="filter_from", label="from (YYYY-MM-DD, inclusive)")
    to = django_filters.DateFilter(method="filter_to", label="to (YYYY-MM-DD, inclusive)")

    def filter_from(self, queryset, name, value):
        return queryset.filter(created_at__gte=_utc_midnight(value))

    def filter_to(self, queryset, name, value):
        return queryset.filter(created_at__lt=_utc_midnight(value + timedelta(days=1)))


def _utc_midnight(day) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


class TransactionFilter(DateRangeFilterSet):
    type = django_filters.ChoiceFilter(choices=CreditTransaction.Type.choices)

    class Meta:
        model = CreditTransaction
        fields = ["type"]


class PaymentFilter(DateRangeFilterSet):
    status = django_filters.ChoiceFilter(choices=Payment.Status.choices)
    provider = django_filters.ChoiceFilter(choices=Payment._meta.get_field("provider").choices)

    class Meta:
        model = Payment
        fields = ["status", "provider"]
