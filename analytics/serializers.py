import json
from datetime import date, timedelta

from django.utils import timezone
from rest_framework import serializers

from analytics.models import ErrorLog, PlatformMetric
from analytics.selectors import PRODUCT_ORDERING
from shops.serializers import StrictCharField

MAX_RANGE_DAYS = 3 * 366  # three years: a dashboard's longest view
EARLIEST = date(2000, 1, 1)


class DateRangeInputSerializer(serializers.Serializer):
    """`from`/`to` (YYYY-MM-DD, inclusive; default the last 30 days ending today). Refuses
    `from` > `to`, dates before 2000-01-01 or more than a day after today (UTC: a shop east of
    UTC may already be a day ahead), and ranges longer than three years."""

    date_from = serializers.DateField(required=False, input_formats=["%Y-%m-%d"])
    date_to = serializers.DateField(required=False, input_formats=["%Y-%m-%d"])

    def to_internal_value(self, data):
        renamed = {"date_from": data.get("from"), "date_to": data.get("to")}
        try:
            values = super().to_internal_value({k: v for k, v in renamed.items() if v not in (None, "")})
        except serializers.ValidationError as exc:
            raise serializers.ValidationError(
                {{"date_from": "from", "date_to": "to"}.get(k, k): v for k, v in exc.detail.items()}
            ) from exc
        return values

    def validate(self, attrs):
        latest = timezone.now().date() + timedelta(days=1)
        date_to = attrs.get("date_to") or min(latest, timezone.now().date())
        date_from = attrs.get("date_from") or date_to - timedelta(days=29)
        errors = {}
        for key, value in (("from", date_from), ("to", date_to)):
            if not EARLIEST <= value <= latest:
                errors[key] = [f"Must be between {EARLIEST.isoformat()} and {latest.isoformat()}."]
        if errors:
            raise serializers.ValidationError(errors)
        if date_from > date_to:
            raise serializers.ValidationError({"from": ["`from` must not be after `to`."]})
        if (date_to - date_from).days + 1 > MAX_RANGE_DAYS:
            raise serializers.ValidationError(
                {"from": [f"The range may span at most {MAX_RANGE_DAYS} days."]}
            )
        return {
            "date_from": date_from,
            "date_to": date_to,
            **{k: v for k, v in attrs.items() if k not in ("date_from", "date_to")},
        }


class SalesInputSerializer(DateRangeInputSerializer):
    interval = serializers.ChoiceField(choices=["day", "week", "month"], default="day")

    def to_internal_value(self, data):
        values = super().to_internal_value(data)
        interval = serializers.ChoiceField(choices=["day", "week", "month"])
        try:
            values["interval"] = interval.run_validation(data.get("interval") or "day")
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({"interval": exc.detail}) from exc
        return values


class ProductsInputSerializer(DateRangeInputSerializer):
    def to_internal_value(self, data):
        values = super().to_internal_value(data)
        errors = {}
        order_by = data.get("order_by") or "revenue"
        if order_by not in PRODUCT_ORDERING:
            errors["order_by"] = [f"One of: {', '.join(sorted(PRODUCT_ORDERING))}."]
        try:
            limit = serializers.IntegerField(min_value=1, max_value=100).run_validation(
                data.get("limit") or 20
            )
        except serializers.ValidationError as exc:
            errors["limit"] = exc.detail
            limit = None
        if errors:
            raise serializers.ValidationError(errors)
        return {**values, "order_by": order_by, "limit": limit}


MONEY = {"max_digits": 14, "decimal_places": 2}


class SalesRowSerializer(serializers.Serializer):
    period = serializers.DateField()
    orders = serializers.IntegerField()
    items_sold = serializers.IntegerField()
    gross_revenue = serializers.DecimalField(**MONEY)
    cancelled_revenue = serializers.DecimalField(**MONEY)
    net_revenue = serializers.DecimalField(**MONEY)
    cost = serializers.DecimalField(**MONEY)
    gross_profit = serializers.DecimalField(**MONEY)
    avg_order_value = serializers.DecimalField(**MONEY)


class SalesTotalsSerializer(SalesRowSerializer):
    period = None


class SalesOutputSerializer(serializers.Serializer):
    results = SalesRowSerializer(many=True)
    totals = SalesTotalsSerializer()


class SummaryDaySerializer(serializers.Serializer):
    orders = serializers.IntegerField()
    revenue = serializers.DecimalField(**MONEY, help_text="Net of cancellations.")
    gross_revenue = serializers.DecimalField(**MONEY)
    cancelled_orders = serializers.IntegerField()
    items_sold = serializers.IntegerField()


class SummaryWindowSerializer(serializers.Serializer):
    orders = serializers.IntegerField()
    revenue = serializers.DecimalField(**MONEY, help_text="Net of cancellations.")


class SummaryProductSerializer(serializers.Serializer):
    item_id = serializers.UUIDField()
    sku = serializers.CharField()
    name = serializers.CharField()
    units_sold = serializers.IntegerField()
    revenue = serializers.DecimalField(**MONEY)


class ShopSummarySerializer(serializers.Serializer):
    """The dashboard card: what `GET /api/shops/<id>/analytics/summary` answers (documents it)."""

    date = serializers.DateField(help_text="The shop's local today.")
    currency = serializers.CharField()
    today = SummaryDaySerializer()
    yesterday = SummaryDaySerializer()
    last_7_days = SummaryWindowSerializer()
    last_30_days = SummaryWindowSerializer()
    item_count = serializers.IntegerField(help_text="Active items.")
    low_stock_count = serializers.IntegerField(
        help_text="Active items at or below their low-stock threshold."
    )
    open_conversations = serializers.IntegerField()
    top_products = SummaryProductSerializer(many=True, help_text="By revenue over the last 30 days.")


class ProductRowSerializer(serializers.Serializer):
    item_id = serializers.UUIDField()
    sku = serializers.CharField()
    name = serializers.CharField()
    category = serializers.CharField()
    orders = serializers.IntegerField()
    units_sold = serializers.IntegerField()
    revenue = serializers.DecimalField(**MONEY)
    cost = serializers.DecimalField(**MONEY)
    profit = serializers.DecimalField(**MONEY)
    margin_pct = serializers.DecimalField(max_digits=9, decimal_places=2, allow_null=True)
    stock_end = serializers.IntegerField(allow_null=True)
    sell_through_pct = serializers.DecimalField(max_digits=9, decimal_places=2, allow_null=True)


class CategoryRowSerializer(serializers.Serializer):
    category = serializers.CharField()
    items_sold = serializers.IntegerField()
    revenue = serializers.DecimalField(**MONEY)
    cost = serializers.DecimalField(**MONEY)
    profit = serializers.DecimalField(**MONEY)
    margin_pct = serializers.DecimalField(max_digits=9, decimal_places=2, allow_null=True)


class PlatformMetricSerializer(serializers.ModelSerializer):
    class Meta:
        model = PlatformMetric
        exclude = ["id", "created_at", "updated_at"]


class ErrorInputSerializer(serializers.Serializer):
    message = StrictCharField(max_length=2000)
    stack = StrictCharField(max_length=20000, required=False, allow_blank=True, default="")
    url = StrictCharField(max_length=2000, required=False, allow_blank=True, default="")
    user_agent = StrictCharField(max_length=500, required=False, allow_blank=True, default="")
    severity = StrictCharField(
        max_length=16,
        default=ErrorLog.Severity.ERROR,
        help_text="debug|info|warning|error|critical, or LOW|MEDIUM|HIGH|CRITICAL "
        "(mapped to info|warning|error|critical).",
    )

    def validate_severity(self, value):
        from analytics.services.errors import error_severity

        try:
            return error_severity(value)
        except ValueError:
            raise serializers.ValidationError(
                "Must be one of debug, info, warning, error, critical, LOW, MEDIUM, HIGH, CRITICAL."
            ) from None

    context = serializers.DictField(required=False, default=dict)

    def validate_context(self, value):
        text = json.dumps(value)
        if len(text) > 10_000:
            raise serializers.ValidationError("At most 10,000 characters of JSON.")
        if "\\u0000" in text:
            raise serializers.ValidationError("NUL characters are not allowed.")
        return value


class ErrorOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = ErrorLog
        fields = ["id", "fingerprint", "severity", "occurrences", "first_seen", "last_seen"]
