"""Input and output shapes for the shops API.

Every integer input is bounded so no value can overflow a PostgreSQL integer into a 500; every
list and string is bounded so no request can be arbitrarily large.
"""

import functools
import re
from zoneinfo import available_timezones

from django.db import models
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from credits.models import Provider
from shops.models import (
    Conversation,
    Form,
    FormSubmission,
    FormSubmissionLine,
    Item,
    KeywordReply,
    Message,
    PaymentMethod,
    Role,
    SavedReply,
    Shop,
    SocialIntegration,
    StockHistory,
    StockReason,
    TeamMember,
)
from shops.services.plans import shop_plan_summary
from shops.services.stock import MAX_STOCK

INT_MAX = 2_000_000_000
FIELD_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,49}$")
FIELD_TYPES = ("text", "textarea", "email", "phone", "number", "select")


class _StrictString:
    """DRF turns numbers into strings; a wrong type is a 400 here."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictCharField(_StrictString, serializers.CharField):
    pass


class StrictEmailField(_StrictString, serializers.EmailField):
    pass


class StrictSlugField(_StrictString, serializers.SlugField):
    pass


class StrictModelSerializer(serializers.ModelSerializer):
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: StrictCharField,
        models.TextField: StrictCharField,
        models.SlugField: StrictSlugField,
        models.EmailField: StrictEmailField,
    }


class ShopSerializer(StrictModelSerializer):
    role = serializers.SerializerMethodField(allow_null=True)
    # A plan code (GET /api/shop-plans): staff may add plans, so not a closed enum.
    plan = serializers.CharField(read_only=True, help_text="The code of the shop's plan, e.g. `free`.")

    class Meta:
        model = Shop
        fields = [
            "id",
            "name",
            "slug",
            "currency",
            "timezone",
            "plan",
            "plan_status",
            "plan_price",
            "billing_cycle",
            "owner",
            "role",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "id",
            "owner",
            "role",
            "plan",
            "plan_status",
            "plan_price",
            "billing_cycle",
            "created_at",
            "updated_at",
        ]
        extra_kwargs = {"slug": {"required": False, "validators": []}}

    def get_role(self, shop) -> str | None:
        return getattr(shop, "my_role", None) or self.context.get("role")


@functools.cache
def _timezones() -> frozenset[str]:
    # available_timezones() walks the tz database on disk; the set cannot change while running.
    return frozenset(available_timezones())


BILLING_FIELDS = ("plan", "plan_status", "plan_price", "billing_cycle")


class ShopInputSerializer(StrictModelSerializer):
    """What an owner may set. The billing fields are not self-service (issue 9): sending one is
    a 400 naming it; they change only through `shops.services.shop_plan_change`."""

    class Meta:
        model = Shop
        fields = ["name", "slug", "currency", "timezone"]
        extra_kwargs = {"slug": {"required": False, "validators": []}}

    def to_internal_value(self, data):
        if isinstance(data, dict):
            refused = {
                name: ["Set by billing; it cannot be changed here."]
                for name in BILLING_FIELDS
                if name in data
            }
            if refused:
                raise serializers.ValidationError(refused)
        return super().to_internal_value(data)

    def validate_currency(self, value):
        if not re.fullmatch(r"[A-Z]{3}", value):
            raise serializers.ValidationError("Use a three-letter ISO 4217 code, e.g. THB.")
        return value

    def validate_timezone(self, value):
        if value not in _timezones():
            raise serializers.ValidationError("Unknown time zone.")
        return value


class MemberSerializer(StrictModelSerializer):
    email = StrictEmailField(source="user.email", read_only=True)
    name = StrictCharField(source="user.name", read_only=True)
    user_id = serializers.UUIDField(source="user.id", read_only=True)

    class Meta:
        model = TeamMember
        fields = ["id", "user_id", "email", "name", "role", "created_at"]
        read_only_fields = fields


class MemberAddSerializer(serializers.Serializer):
    email = StrictEmailField(max_length=254)
    role = serializers.ChoiceField(choices=Role.choices)


class InvitationSerializer(serializers.Serializer):
    """What the inviter sees: the invitation only, never whether the address has an account."""

    id = serializers.UUIDField(read_only=True)
    email = serializers.EmailField(read_only=True)
    role = serializers.ChoiceField(choices=Role.choices, read_only=True)
    status = serializers.CharField(read_only=True)
    expires_at = serializers.DateTimeField(read_only=True)


class MemberUpdateSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


class ItemSerializer(StrictModelSerializer):
    is_low_stock = serializers.BooleanField(read_only=True)

    class Meta:
        model = Item
        fields = [
            "id",
            "sku",
            "name",
            "description",
            "kind",
            "category",
            "price",
            "cost",
            "stock_quantity",
            "low_stock_threshold",
            "track_stock",
            "is_active",
            "is_low_stock",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "stock_quantity", "is_low_stock", "created_at", "updated_at"]
        extra_kwargs = {"low_stock_threshold": {"min_value": 0, "max_value": INT_MAX}}


class ItemCreateSerializer(ItemSerializer):
    stock_quantity = serializers.IntegerField(min_value=0, max_value=MAX_STOCK, required=False, default=0)

    class Meta(ItemSerializer.Meta):
        read_only_fields = ["id", "is_low_stock", "created_at", "updated_at"]


class StockHistorySerializer(StrictModelSerializer):
    user_id = serializers.UUIDField(read_only=True, allow_null=True)

    class Meta:
        model = StockHistory
        fields = [
            "id",
            "item_id",
            "change",
            "quantity_before",
            "quantity_after",
            "reason",
            "reference",
            "note",
            "user_id",
            "created_at",
        ]
        read_only_fields = fields


# Order-driven reasons are written only by the order services.
MANUAL_REASONS = [r for r in StockReason.values if r not in (StockReason.ORDER, StockReason.CANCELLATION)]


class StockChangeSerializer(serializers.Serializer):
    change = serializers.IntegerField(min_value=-MAX_STOCK, max_value=MAX_STOCK)
    reason = serializers.ChoiceField(choices=MANUAL_REASONS, default=StockReason.MANUAL)
    note = StrictCharField(max_length=500, required=False, allow_blank=True, default="")

    def validate_change(self, value):
        if value == 0:
            raise serializers.ValidationError("Must not be zero.")
        return value


class FormFieldSerializer(serializers.Serializer):
    name = StrictCharField(max_length=50)
    label = StrictCharField(max_length=200, required=False, allow_blank=True)
    type = serializers.ChoiceField(choices=FIELD_TYPES, default="text")
    required = serializers.BooleanField(default=False)
    options = serializers.ListField(child=StrictCharField(max_length=200), max_length=50, required=False)

    def validate_name(self, value):
        if not FIELD_NAME_RE.match(value):
            raise serializers.ValidationError("Use lowercase letters, digits and underscores.")
        return value

    def to_representation(self, instance):
        # Options are stored for select fields only; answered as [] for the others (a partial
        # update's answer too), so every response carries them.
        data = super().to_representation(instance)
        data.setdefault("options", [])
        return data

    def validate(self, attrs):
        if attrs.get("type", "text") == "select" and not attrs.get("options"):
            raise serializers.ValidationError({"options": ["A select field needs options."]})
        return attrs


class FormSerializer(StrictModelSerializer):
    fields = FormFieldSerializer(many=True, required=False, max_length=30)
    # Generated from the name when omitted (shops.services.forms.form_create).
    slug = StrictSlugField(max_length=80, required=False)

    class Meta:
        model = Form
        fields = ["id", "name", "slug", "description", "fields", "is_active", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]

    def validate_fields(self, value):
        # A PATCH validates nested items partially, so `name` may be missing here.
        if any("name" not in f for f in value):
            raise serializers.ValidationError("Every field needs a name.")
        names = [f["name"] for f in value]
        if len(set(names)) != len(names):
            raise serializers.ValidationError("Field names must be unique.")
        # A PATCH validates nested fields partially (no defaults): store complete specs anyway.
        return [
            {
                "name": f["name"],
                "label": f.get("label") or f["name"].replace("_", " ").capitalize(),
                "type": f.get("type", "text"),
                "required": f.get("required", False),
                **({"options": f["options"]} if f.get("type") == "select" else {}),
            }
            for f in value
        ]

    def validate_slug(self, value):
        taken = Form.objects.filter(slug=value)
        if self.instance is not None:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise serializers.ValidationError("This slug is taken.")
        return value


class PaymentMethodSerializer(StrictModelSerializer):
    details = serializers.DictField(child=StrictCharField(max_length=500, allow_blank=True), required=False)

    class Meta:
        model = PaymentMethod
        fields = ["id", "kind", "name", "details", "is_active", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]

    def validate_details(self, value):
        if len(value) > 20 or any(len(key) > 50 for key in value):
            raise serializers.ValidationError("At most 20 entries with keys of at most 50 characters.")
        return value


class PublicPaymentMethodSerializer(StrictModelSerializer):
    class Meta:
        model = PaymentMethod
        fields = ["id", "kind", "name", "details"]
        read_only_fields = fields


class PublicItemSerializer(StrictModelSerializer):
    in_stock = serializers.SerializerMethodField()

    class Meta:
        model = Item
        fields = ["id", "sku", "name", "description", "kind", "category", "price", "in_stock"]
        read_only_fields = fields

    def get_in_stock(self, item) -> bool:
        return not item.track_stock or item.stock_quantity > 0


class OrderLineSerializer(StrictModelSerializer):
    class Meta:
        model = FormSubmissionLine
        fields = ["id", "item_id", "item_name", "sku", "quantity", "unit_price", "unit_cost", "line_total"]
        read_only_fields = fields


class OrderSerializer(StrictModelSerializer):
    lines = OrderLineSerializer(many=True, read_only=True)
    customer = serializers.SerializerMethodField()
    payment_method_id = serializers.UUIDField(read_only=True, allow_null=True)
    form_id = serializers.UUIDField(read_only=True)

    class Meta:
        model = FormSubmission
        fields = [
            "id",
            "form_id",
            "status",
            "customer",
            "lines",
            "total",
            "currency",
            "payment_method_id",
            "note",
            "submitted_at",
            "status_changed_at",
            "cancelled_at",
        ]
        read_only_fields = fields

    def get_customer(self, order) -> dict:
        return {
            "name": order.customer_name,
            "phone": order.customer_phone,
            "email": order.customer_email,
            "address": order.customer_address,
            **order.customer_extra,
        }


class PublicOrderLineSerializer(OrderLineSerializer):
    """An order line as the customer sees it: no cost."""

    class Meta(OrderLineSerializer.Meta):
        fields = ["id", "item_id", "item_name", "sku", "quantity", "unit_price", "line_total"]
        read_only_fields = fields


class PublicOrderSerializer(OrderSerializer):
    """What the customer sees after submitting: no costs."""

    lines = PublicOrderLineSerializer(many=True, read_only=True)

    class Meta(OrderSerializer.Meta):
        fields = [
            "id",
            "status",
            "customer",
            "lines",
            "total",
            "currency",
            "payment_method_id",
            "note",
            "submitted_at",
        ]
        read_only_fields = fields


class OrderStatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=FormSubmission._meta.get_field("status").choices)


class OrderLineInputSerializer(serializers.Serializer):
    item_id = serializers.UUIDField()
    quantity = serializers.IntegerField(min_value=1, max_value=100_000)


class CustomerField(serializers.DictField):
    def to_internal_value(self, data):
        data = super().to_internal_value(data)
        if len(data) > 30:
            raise serializers.ValidationError("Too many fields.")
        return data


class OrderSubmitSerializer(serializers.Serializer):
    customer = CustomerField()
    lines = OrderLineInputSerializer(many=True, min_length=1, max_length=100)
    payment_method_id = serializers.UUIDField(required=False, allow_null=True, default=None)
    note = StrictCharField(max_length=2000, required=False, allow_blank=True, default="")


class ConversationSerializer(StrictModelSerializer):
    class Meta:
        model = Conversation
        fields = [
            "id",
            "channel",
            "customer_handle",
            "customer_name",
            "status",
            "last_message_at",
            "created_at",
        ]
        read_only_fields = ["id", "channel", "customer_handle", "last_message_at", "created_at"]


class ConversationUpdateSerializer(StrictModelSerializer):
    class Meta:
        model = Conversation
        fields = ["customer_name", "status"]


class MessageSerializer(StrictModelSerializer):
    conversation_id = serializers.UUIDField(read_only=True)
    sent_by_id = serializers.UUIDField(read_only=True, allow_null=True)
    keyword_reply_id = serializers.UUIDField(read_only=True, allow_null=True)

    class Meta:
        model = Message
        fields = [
            "id",
            "conversation_id",
            "direction",
            "sender",
            "text",
            "is_ai",
            "sent_by_id",
            "keyword_reply_id",
            "delivery_status",
            "attempts",
            "provider_message_id",
            "error",
            "sent_at",
            "created_at",
        ]
        read_only_fields = fields


class OutboundMessageSerializer(StrictModelSerializer):
    """An outbound message as a connector sees it: where to send it and what to send."""

    conversation_id = serializers.UUIDField(read_only=True)
    channel = serializers.CharField(source="conversation.channel", read_only=True)
    customer_handle = serializers.CharField(source="conversation.customer_handle", read_only=True)
    customer_name = serializers.CharField(source="conversation.customer_name", read_only=True)

    class Meta:
        model = Message
        fields = [
            "id",
            "conversation_id",
            "channel",
            "customer_handle",
            "customer_name",
            "sender",
            "text",
            "delivery_status",
            "attempts",
            "provider_message_id",
            "error",
            "sent_at",
            "created_at",
        ]
        read_only_fields = fields


class OutboundAckSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=[Message.DeliveryStatus.SENT, Message.DeliveryStatus.FAILED],
        default=Message.DeliveryStatus.SENT,
    )
    provider_message_id = StrictCharField(max_length=255, required=False, allow_blank=True, default="")
    error = StrictCharField(max_length=1000, required=False, allow_blank=True, default="")


class MessageSendSerializer(serializers.Serializer):
    text = StrictCharField(max_length=5000, required=False, allow_blank=True, default="")
    saved_reply_id = serializers.UUIDField(required=False, allow_null=True, default=None)
    sender = serializers.ChoiceField(
        choices=[Message.Sender.STAFF, Message.Sender.AI], default=Message.Sender.STAFF
    )


class InboundSerializer(serializers.Serializer):
    channel = serializers.ChoiceField(choices=Conversation.Channel.choices)
    customer_handle = StrictCharField(max_length=200)
    customer_name = StrictCharField(max_length=200, required=False, allow_blank=True, default="")
    text = StrictCharField(max_length=5000)


class KeywordReplySerializer(StrictModelSerializer):
    keywords = serializers.ListField(child=StrictCharField(max_length=100), min_length=1, max_length=50)
    priority = serializers.IntegerField(min_value=-1_000_000, max_value=1_000_000, required=False)

    class Meta:
        model = KeywordReply
        fields = ["id", "keywords", "match", "reply", "priority", "is_active", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]


class SavedReplySerializer(StrictModelSerializer):
    class Meta:
        model = SavedReply
        fields = ["id", "title", "text", "shortcut", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]

    def validate_shortcut(self, value):
        shop = self.context["shop"]
        taken = SavedReply.objects.filter(shop=shop, shortcut=value).exclude(shortcut="")
        if self.instance is not None:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise serializers.ValidationError("This shortcut is taken.")
        return value


class IntegrationSerializer(StrictModelSerializer):
    """Tokens and webhook secrets are write-only: responses only say whether one is stored.
    `webhook_url` is where the channel must send its events (LINE and Messenger);
    `needs_reauth` is set when the channel refused the access token, and cleared by storing a
    new one."""

    access_token = StrictCharField(write_only=True, max_length=4000, required=False, allow_blank=True)
    refresh_token = StrictCharField(write_only=True, max_length=4000, required=False, allow_blank=True)
    channel_secret = StrictCharField(write_only=True, max_length=500, required=False, allow_blank=True)
    app_secret = StrictCharField(write_only=True, max_length=500, required=False, allow_blank=True)
    verify_token = StrictCharField(write_only=True, max_length=500, required=False, allow_blank=True)
    has_access_token = serializers.SerializerMethodField()
    has_refresh_token = serializers.SerializerMethodField()
    has_channel_secret = serializers.SerializerMethodField()
    has_app_secret = serializers.SerializerMethodField()
    has_verify_token = serializers.SerializerMethodField()
    webhook_url = serializers.SerializerMethodField(allow_null=True)

    SECRETS = ("access_token", "refresh_token", "channel_secret", "app_secret", "verify_token")
    WEBHOOK_ROUTES = {
        SocialIntegration.Provider.LINE: "channel-line-webhook",
        SocialIntegration.Provider.FACEBOOK: "channel-facebook-webhook",
    }

    class Meta:
        model = SocialIntegration
        fields = [
            "id",
            "provider",
            "account_id",
            "account_name",
            "access_token",
            "refresh_token",
            "channel_secret",
            "app_secret",
            "verify_token",
            "has_access_token",
            "has_refresh_token",
            "has_channel_secret",
            "has_app_secret",
            "has_verify_token",
            "webhook_url",
            "token_expires_at",
            "is_active",
            "needs_reauth",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "id",
            "has_access_token",
            "has_refresh_token",
            "has_channel_secret",
            "has_app_secret",
            "has_verify_token",
            "webhook_url",
            "needs_reauth",
            "created_at",
            "updated_at",
        ]

    def get_has_access_token(self, obj) -> bool:
        return bool(obj.access_token)

    def get_has_refresh_token(self, obj) -> bool:
        return bool(obj.refresh_token)

    def get_has_channel_secret(self, obj) -> bool:
        return bool(obj.channel_secret)

    def get_has_app_secret(self, obj) -> bool:
        return bool(obj.app_secret)

    def get_has_verify_token(self, obj) -> bool:
        return bool(obj.verify_token)

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_webhook_url(self, obj) -> str | None:
        route = self.WEBHOOK_ROUTES.get(obj.provider)
        if route is None:
            return None
        path = reverse(route, kwargs={"integration_id": obj.pk})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path

    def update(self, instance, validated_data):
        if validated_data.get("access_token"):
            # A new token is the answer to `needs_reauth`: delivery may use the integration again.
            validated_data["needs_reauth"] = False
        return super().update(instance, validated_data)

    def validate(self, attrs):
        shop = self.context["shop"]
        provider = attrs.get("provider", getattr(self.instance, "provider", None))
        account_id = attrs.get("account_id", getattr(self.instance, "account_id", None))
        taken = SocialIntegration.objects.filter(shop=shop, provider=provider, account_id=account_id)
        if self.instance is not None:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise serializers.ValidationError({"account_id": ["This account is already connected."]})
        return attrs


# --- plans --------------------------------------------------------------------------------------


class ShopPlanLimitsSerializer(serializers.Serializer):
    """A plan's limits; null is unlimited."""

    max_items = serializers.IntegerField(allow_null=True)
    max_members = serializers.IntegerField(allow_null=True)
    max_forms = serializers.IntegerField(allow_null=True)
    max_outbound_messages_per_month = serializers.IntegerField(allow_null=True)


class ShopPlanSerializer(serializers.Serializer):
    """A shop plan on sale (prices in its currency, per billing cycle)."""

    code = serializers.CharField()
    name = serializers.CharField()
    price_monthly = serializers.DecimalField(max_digits=12, decimal_places=2)
    price_yearly = serializers.DecimalField(max_digits=12, decimal_places=2)
    currency = serializers.CharField()
    limits = ShopPlanLimitsSerializer(source="*")


class ShopPlanUsageSerializer(serializers.Serializer):
    items = serializers.IntegerField()
    members = serializers.IntegerField()
    forms = serializers.IntegerField()
    outbound_messages_this_month = serializers.IntegerField(help_text="Calendar month, UTC.")


class ShopPlanStateSerializer(serializers.Serializer):
    """The shop's plan now: what it is, its subscription's state, its limits and their use."""

    code = serializers.CharField()
    name = serializers.CharField()
    status = serializers.ChoiceField(
        choices=["active", "past_due"], help_text="`past_due`: a renewal failed; the grace period runs."
    )
    billing_cycle = serializers.ChoiceField(choices=Shop.BillingCycle.choices, allow_null=True)
    current_period_end = serializers.DateTimeField(allow_null=True, help_text="Null on the free plan.")
    auto_renew = serializers.BooleanField()
    limits = ShopPlanLimitsSerializer()
    usage = ShopPlanUsageSerializer()


class ShopDetailSerializer(ShopSerializer):
    """One shop, with its plan's limits and usage under `plan_details`."""

    plan_details = serializers.SerializerMethodField()

    class Meta(ShopSerializer.Meta):
        fields = [*ShopSerializer.Meta.fields, "plan_details"]
        read_only_fields = [*ShopSerializer.Meta.read_only_fields, "plan_details"]

    @extend_schema_field(ShopPlanStateSerializer)
    def get_plan_details(self, shop) -> dict:
        return ShopPlanStateSerializer(shop_plan_summary(shop)).data


# The providers that take a paid payment (every one but `free`), as plan purchases offer them.
PAID_PROVIDER_CHOICES = [c for c in Provider.choices if c[0] != Provider.FREE]


class ShopPlanPurchaseSerializer(serializers.Serializer):
    plan = serializers.SlugField(max_length=50, help_text="A plan code from GET /api/shop-plans.")
    billing_cycle = serializers.ChoiceField(choices=Shop.BillingCycle.choices)
    provider = serializers.ChoiceField(choices=PAID_PROVIDER_CHOICES)
