"""Staff console for shops. Stock is read-only here (it only moves through `stock_update`, which
writes the history row), order lines and stock history are read-only records, and integration
tokens are never rendered."""

from django.contrib import admin

from shops import services
from shops.models import (
    Conversation,
    Form,
    FormSubmission,
    FormSubmissionLine,
    InboundApiKey,
    Item,
    KeywordReply,
    Message,
    PaymentMethod,
    SavedReply,
    Shop,
    ShopInvitation,
    SocialIntegration,
    StockHistory,
    TeamMember,
)
from shops.services.stock import ITEM_FIELDS


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class TeamMemberInline(admin.TabularInline):
    model = TeamMember
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Shop)
class ShopAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "owner", "plan", "plan_status", "currency", "created_at"]
    list_filter = ["plan", "plan_status", "billing_cycle"]
    search_fields = ["name", "slug", "owner__email"]
    list_select_related = ["owner"]
    autocomplete_fields = ["owner"]
    inlines = [TeamMemberInline]

    def get_readonly_fields(self, request, obj=None):
        # The owner is also the shop's owner member; changing one without the other would split them.
        return ["owner"] if obj else []


class StockHistoryInline(ReadOnlyInline):
    model = StockHistory
    fields = [
        "created_at",
        "change",
        "quantity_before",
        "quantity_after",
        "reason",
        "reference",
        "note",
        "user",
    ]
    readonly_fields = fields
    ordering = ["-id"]
    max_num = 0
    show_change_link = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user")


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = [
        "sku",
        "name",
        "shop",
        "kind",
        "category",
        "price",
        "stock_quantity",
        "low_stock_threshold",
        "is_active",
    ]
    list_filter = ["kind", "is_active", "track_stock"]
    search_fields = ["sku", "name", "shop__name"]
    list_select_related = ["shop"]
    autocomplete_fields = ["shop"]
    readonly_fields = ["stock_quantity", "created_at", "updated_at"]
    inlines = [StockHistoryInline]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.save()  # a new item starts at zero stock
            return
        # Never write stock_quantity from a form loaded earlier: orders may have moved it since.
        services.item_update(
            item=obj, **{name: getattr(obj, name) for name in form.changed_data if name in ITEM_FIELDS}
        )


@admin.register(StockHistory)
class StockHistoryAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "item",
        "change",
        "quantity_before",
        "quantity_after",
        "reason",
        "reference",
    ]
    list_filter = ["reason"]
    search_fields = ["item__sku", "item__name", "reference"]
    list_select_related = ["item"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class OrderLineInline(ReadOnlyInline):
    model = FormSubmissionLine
    fields = ["item", "item_name", "sku", "quantity", "unit_price", "unit_cost", "line_total"]
    readonly_fields = fields


@admin.register(FormSubmission)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["id", "shop", "status", "customer_name", "total", "currency", "submitted_at"]
    list_filter = ["status"]
    search_fields = ["id", "customer_name", "customer_phone", "customer_email", "shop__name"]
    list_select_related = ["shop"]
    date_hierarchy = "submitted_at"
    # Status changes restock; they must go through the API/service, not a raw field edit.
    readonly_fields = [
        "shop",
        "form",
        "status",
        "total",
        "currency",
        "payment_method",
        "submitted_at",
        "status_changed_at",
        "cancelled_at",
        "customer_extra",
    ]
    inlines = [OrderLineInline]

    def save_model(self, request, obj, form, change):
        # Only the edited customer fields: the status may have moved since the form was loaded.
        obj.save(update_fields=[*form.changed_data, "updated_at"] if form.changed_data else ["updated_at"])

    def has_add_permission(self, request):
        return False


@admin.register(Form)
class FormAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "shop", "is_active"]
    search_fields = ["name", "slug", "shop__name"]
    list_select_related = ["shop"]
    autocomplete_fields = ["shop"]


@admin.register(PaymentMethod)
class PaymentMethodAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "shop", "is_active"]
    list_filter = ["kind", "is_active"]
    list_select_related = ["shop"]
    autocomplete_fields = ["shop"]


class MessageInline(ReadOnlyInline):
    model = Message
    fields = ["created_at", "direction", "sender", "text", "sent_by"]
    readonly_fields = fields


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["customer_handle", "channel", "shop", "status", "last_message_at"]
    list_filter = ["channel", "status"]
    search_fields = ["customer_handle", "customer_name", "shop__name"]
    list_select_related = ["shop"]
    autocomplete_fields = ["shop"]
    inlines = [MessageInline]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["created_at", "conversation", "sender", "direction", "is_ai"]
    list_filter = ["sender", "direction"]
    search_fields = ["text"]
    list_select_related = ["conversation"]
    readonly_fields = ["conversation", "direction", "sender", "text", "sent_by", "keyword_reply", "is_ai"]

    def has_add_permission(self, request):
        return False


@admin.register(KeywordReply)
class KeywordReplyAdmin(admin.ModelAdmin):
    list_display = ["__str__", "match", "priority", "is_active", "shop"]
    list_filter = ["match", "is_active"]
    list_select_related = ["shop"]
    autocomplete_fields = ["shop"]


@admin.register(SavedReply)
class SavedReplyAdmin(admin.ModelAdmin):
    list_display = ["title", "shortcut", "shop"]
    search_fields = ["title", "shortcut"]
    list_select_related = ["shop"]
    autocomplete_fields = ["shop"]


@admin.register(SocialIntegration)
class SocialIntegrationAdmin(admin.ModelAdmin):
    list_display = ["provider", "account_id", "account_name", "shop", "is_active", "token_expires_at"]
    list_filter = ["provider", "is_active"]
    search_fields = ["account_id", "account_name", "shop__name"]
    list_select_related = ["shop"]
    autocomplete_fields = ["shop"]
    # Tokens are excluded from every admin form and list; they are set through the API.
    exclude = ["access_token", "refresh_token"]


@admin.register(InboundApiKey)
class InboundApiKeyAdmin(admin.ModelAdmin):
    """Which shop a `shops:inbound` service key may post into (create keys with
    `manage.py create_inbound_key --shop <slug> --name <name>`; re-bind one here)."""

    list_display = ["api_key", "shop", "created_at"]
    search_fields = ["api_key__prefix", "api_key__name", "shop__name", "shop__slug"]
    list_select_related = ["api_key", "shop"]
    raw_id_fields = ["shop"]


@admin.register(ShopInvitation)
class ShopInvitationAdmin(admin.ModelAdmin):
    list_display = ["email", "shop", "role", "status", "expires_at", "accepted_at", "created_at"]
    list_filter = ["status", "role"]
    search_fields = ["email", "shop__name"]
    list_select_related = ["shop"]
    readonly_fields = [
        "shop",
        "email",
        "role",
        "token_hash",
        "status",
        "invited_by",
        "expires_at",
        "accepted_at",
        "accepted_by",
        "created_at",
        "updated_at",
    ]

    def has_add_permission(self, request):
        return False  # invitations are sent through the API so the email goes out
