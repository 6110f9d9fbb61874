import django_filters

from config.filters import DateRangeFilterSet
from credits.models import CreditTransaction, Payment


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
