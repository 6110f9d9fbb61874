import django_filters
from django import forms
from django.db.models import Q

from config.filters import DateRangeFilterSet
from shops.models import Conversation, FormSubmission, Item, OrderStatus
from shops.selectors import low_stock_q


class StrictBooleanField(forms.Field):
    """`true`/`false` (or 1/0, yes/no); anything else is a 400, not silently ignored."""

    def to_python(self, value):
        if value in (None, ""):
            return None
        text = str(value).strip().lower()
        if text in ("true", "1", "yes"):
            return True
        if text in ("false", "0", "no"):
            return False
        raise forms.ValidationError("Use true or false.")


class StrictBooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField


class ItemFilter(django_filters.FilterSet):
    category = django_filters.CharFilter(field_name="category", max_length=100)
    is_active = StrictBooleanFilter(field_name="is_active")
    low_stock = StrictBooleanFilter(method="filter_low_stock")
    search = django_filters.CharFilter(method="filter_search", max_length=200)

    class Meta:
        model = Item
        fields = ["category", "is_active", "low_stock", "search"]

    def filter_low_stock(self, queryset, name, value):
        if value is None:
            return queryset
        return queryset.filter(low_stock_q()) if value else queryset.exclude(low_stock_q())

    def filter_search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(
            Q(name__icontains=value) | Q(sku__icontains=value) | Q(category__icontains=value)
        )


class OrderFilter(DateRangeFilterSet):
    status = django_filters.ChoiceFilter(choices=OrderStatus.choices)
    date_field = "submitted_at"
    search = django_filters.CharFilter(method="filter_search", max_length=200)

    class Meta:
        model = FormSubmission
        fields = ["status"]

    def filter_search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(
            Q(customer_name__icontains=value)
            | Q(customer_phone__icontains=value)
            | Q(customer_email__icontains=value)
        )


class ConversationFilter(django_filters.FilterSet):
    channel = django_filters.ChoiceFilter(choices=Conversation.Channel.choices)
    status = django_filters.ChoiceFilter(choices=Conversation.Status.choices)

    class Meta:
        model = Conversation
        fields = ["channel", "status"]
