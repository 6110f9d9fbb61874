from rest_framework import serializers

from accounts.models import SubscriptionPlan
from credits.models import CreditPackage, CreditTransaction, Payment, Provider


class PackageSerializer(serializers.ModelSerializer):
    price_per_credit = serializers.DecimalField(max_digits=12, decimal_places=2, read_only=True)
    is_free = serializers.BooleanField(read_only=True)

    class Meta:
        model = CreditPackage
        fields = [
            "id",
            "name",
            "description",
            "credits",
            "price",
            "currency",
            "discount_percent",
            "price_per_credit",
            "is_free",
        ]
        read_only_fields = fields


class BalanceSerializer(serializers.Serializer):
    balance = serializers.IntegerField()
    lifetime_purchased = serializers.IntegerField()
    lifetime_spent = serializers.IntegerField()
    lifetime_refunded = serializers.IntegerField()
    lifetime_bonus = serializers.IntegerField()
    lifetime_adjusted = serializers.IntegerField()


class TransactionSerializer(serializers.ModelSerializer):
    payment_id = serializers.UUIDField(read_only=True, allow_null=True)

    class Meta:
        model = CreditTransaction
        fields = ["id", "type", "amount", "balance_after", "job_id", "payment_id", "reason", "created_at"]
        read_only_fields = fields


class OptionalURLField(serializers.URLField):
    """A URL that may be absent, shown as null: the model stores "" (a blank URLField), which
    is not a URI."""

    def __init__(self, **kwargs):
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)

    def to_representation(self, value):
        return value or None


class PaymentSerializer(serializers.ModelSerializer):
    receipt_url = OptionalURLField(read_only=True)
    package_id = serializers.UUIDField(read_only=True, allow_null=True)
    package_name = serializers.CharField(source="package.name", read_only=True, allow_null=True)
    plan = serializers.CharField(source="plan.code", read_only=True, allow_null=True)
    subscription_id = serializers.UUIDField(read_only=True, allow_null=True)
    purpose = serializers.CharField(
        read_only=True,
        help_text="What a payment that is neither a package nor a plan buys (`shop_plan`); else empty.",
    )
    checkout = serializers.SerializerMethodField()

    class Meta:
        model = Payment
        fields = [
            "id",
            "package_id",
            "package_name",
            "plan",
            "subscription_id",
            "purpose",
            "credits",
            "amount",
            "currency",
            "provider",
            "status",
            "checkout",
            "gateway_payment_id",
            "transaction_id",
            "receipt_url",
            "failure_reason",
            "refunded_amount",
            "credits_clawed_back",
            "refund_shortfall",
            "completed_at",
            "failed_at",
            "refunded_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_checkout(self, payment) -> dict:
        checkout = (payment.metadata or {}).get("checkout")
        return checkout if isinstance(checkout, dict) else {}


class PaymentRefundSerializer(serializers.Serializer):
    """One refund of a payment (a PaymentRefund row)."""

    id = serializers.UUIDField(read_only=True)
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, read_only=True)
    credits_clawed_back = serializers.IntegerField(read_only=True)
    shortfall = serializers.IntegerField(
        read_only=True, help_text="Credits this refund could not claw back (already spent)."
    )
    reason = serializers.CharField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)


class PaymentDetailSerializer(PaymentSerializer):
    """A payment with its refunds, oldest first."""

    refunds = PaymentRefundSerializer(many=True, read_only=True)

    class Meta(PaymentSerializer.Meta):
        fields = [*PaymentSerializer.Meta.fields, "refunds"]
        read_only_fields = fields


class PurchaseInputSerializer(serializers.Serializer):
    package_id = serializers.UUIDField()
    provider = serializers.ChoiceField(choices=Provider.choices, required=False, allow_null=True)


class PlanSerializer(serializers.ModelSerializer):
    class Meta:
        model = SubscriptionPlan
        fields = ["code", "name", "tier", "billing_cycle", "price", "currency", "model_limit"]
        read_only_fields = fields


class SubscriptionPurchaseInputSerializer(serializers.Serializer):
    plan = serializers.SlugField(max_length=50)
    provider = serializers.ChoiceField(choices=[c for c in Provider.choices if c[0] != Provider.FREE])


class PaymentWebhookEventSerializer(serializers.Serializer):
    """The body of a signed payment event from a provider that uses the generic `X-Signature`
    (Stripe and Razorpay send their own event objects, signed by their own schemes). Documents
    the webhook; the receiver reads the raw bytes, since the signature covers them."""

    event_id = serializers.CharField(max_length=255, help_text="Unique per event: a repeat is a `duplicate`.")
    type = serializers.ChoiceField(choices=["payment.succeeded", "payment.failed", "payment.refunded"])
    payment_id = serializers.CharField(
        help_text="The id of the payment POST /api/credits/purchases answered."
    )
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, help_text="Must equal the payment's.")
    currency = serializers.CharField(max_length=255)
    transaction_id = serializers.CharField(required=False, max_length=255)
    receipt_url = serializers.URLField(required=False, allow_null=True, max_length=500)
    failure_reason = serializers.CharField(required=False, max_length=500, help_text="Why a payment failed.")
