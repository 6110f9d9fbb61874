"""Staff console for shops. Stock is read-only in the item form: it moves only through the
"Adjust stock" page (`stock_update`, which writes the history row). Orders move through their
states with the buttons on the order page (`order_transition`, which restocks on cancel), and a
shop's plan changes on its "Change plan" page (`shop_plan_change`); each writes the admin
history with the staff member's reason. Order lines and stock history are read-only records,
and integration tokens are never rendered."""

from django import forms
from django.contrib import admin
from django.db.models import F
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html
from import_export import resources

from config.admin_tools import CsvExportMixin, OperationForm, operation_view, with_reason
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
    OrderStatus,
    PaymentMethod,
    Role,
    SavedReply,
    Shop,
    ShopInvitation,
    ShopPlan,
    ShopPlanPayment,
    ShopSubscription,
    SocialIntegration,
    StockHistory,
    StockReason,
    TeamMember,
)
from shops.services.plans import shop_plan_effective
from shops.services.stock import ITEM_FIELDS
from shops.states import ORDER_TRANSITIONS

SHOP_FILTER = ("shop", admin.RelatedOnlyFieldListFilter)


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class TeamMemberFormSet(forms.BaseInlineFormSet):
    """Members added here count against the shop plan's `max_members`, as invitations do: the
    shop row is locked (the admin validates and saves in one transaction, so the lock holds
    until the members are saved) and the members after the change may not exceed the plan."""

    def clean(self):
        super().clean()
        shop = self.instance
        if any(self.errors):
            return
        # Rows beyond the initial ones are new (a new member's UUID is set before it is saved).
        adding = sum(
            1 for form in self.extra_forms if form.cleaned_data and not form.cleaned_data.get("DELETE")
        )
        removing = sum(1 for form in self.initial_forms if form.cleaned_data.get("DELETE"))
        if adding <= removing:
            return
        locked = Shop.objects.select_for_update(no_key=True).filter(pk=shop.pk).first()
        if locked is None:
            # A shop being added: its owner member is added on save, unless a row names the owner.
            named = {form.cleaned_data.get("user") for form in self.extra_forms if form.cleaned_data}
            members = 0 if shop.owner in named else 1
            plan = shop_plan_effective(shop)
        else:
            members = TeamMember.objects.filter(shop=locked).count()
            plan = shop_plan_effective(locked)
        allowed = plan.limits()["max_members"]
        if allowed is not None and members - removing + adding > allowed:
            raise forms.ValidationError(
                f"The shop's {plan.name} plan allows {allowed} members ({members} now); "
                "change the plan first to add more."
            )


class TeamMemberInline(admin.TabularInline):
    model = TeamMember
    formset = TeamMemberFormSet
    extra = 0
    autocomplete_fields = ["user"]


PLAN_FIELDS = ["plan", "plan_status", "plan_price", "billing_cycle"]


class PlanChangeForm(OperationForm):
    plan = forms.ChoiceField(choices=Shop.Plan.choices)
    plan_status = forms.ChoiceField(choices=Shop.PlanStatus.choices)
    plan_price = forms.DecimalField(max_digits=12, decimal_places=2, min_value=0)
    billing_cycle = forms.ChoiceField(choices=Shop.BillingCycle.choices)
    field_order = [*PLAN_FIELDS, "reason"]


@admin.register(Shop)
class ShopAdmin(admin.ModelAdmin):
    change_form_template = "admin/shops/shop/change_form.html"
    list_display = ["name", "slug", "owner", "plan", "plan_status", "currency", "created_at"]
    list_filter = ["plan", "plan_status", "billing_cycle"]
    search_fields = ["name", "slug", "owner__email"]
    list_select_related = ["owner"]
    autocomplete_fields = ["owner"]
    date_hierarchy = "created_at"
    inlines = [TeamMemberInline]

    def has_delete_permission(self, request, obj=None):
        # Deleting a shop would delete its orders (and the stock they took) with it.
        return False

    def get_readonly_fields(self, request, obj=None):
        # The owner is also the shop's owner member; changing one without the other would split them.
        # The plan changes only through shop_plan_change (the "Change plan" page, or billing).
        return ["owner", *PLAN_FIELDS] if obj else PLAN_FIELDS

    def get_urls(self):
        return [
            path(
                "<uuid:shop_id>/plan/",
                self.admin_site.admin_view(self.plan_view),
                name="shops_shop_change_plan",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "can_change_plan": self.has_change_permission(request)}
        return super().change_view(request, object_id, form_url, extra_context)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        if not change:
            # As shops.services.shop_create does: the owner is the new shop's owner member
            # (after the inline members, so one entered there for the owner becomes the owner).
            TeamMember.objects.update_or_create(
                shop=form.instance, user=form.instance.owner, defaults={"role": Role.OWNER}
            )

    def plan_view(self, request, shop_id):
        shop = get_object_or_404(Shop.objects.select_related("owner"), pk=shop_id)
        before = {name: getattr(shop, name) for name in PLAN_FIELDS}

        def perform(data):
            done = services.shop_plan_change(shop=shop, **{name: data[name] for name in PLAN_FIELDS})
            changes = ", ".join(
                f"{name} {before[name]} → {getattr(done, name)}"
                for name in PLAN_FIELDS
                if before[name] != getattr(done, name)
            )
            return with_reason(
                f"Plan of {done.name} changed: {changes or 'nothing changed'}.", data["reason"]
            )

        return operation_view(
            self,
            request,
            obj=shop,
            form_class=PlanChangeForm,
            perform=perform,
            title=f"Change the plan of {shop.name}",
            form_id="change-plan-form",
            success_url=reverse("admin:shops_shop_change", args=[shop.pk]),
            allowed=self.has_change_permission(request, shop),
            initial=before,
            extra_context={
                "summary": [("Shop", shop.name), ("Owner", shop.owner.email)],
                "submit_label": "Change plan",
            },
        )


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


class LowStockFilter(admin.SimpleListFilter):
    """Items whose stock is at or below their own low-stock threshold (as the low-stock
    notification counts them: stock-tracked items only)."""

    title = "stock level"
    parameter_name = "stock"

    def lookups(self, request, model_admin):
        return [("low", "Low (at or below threshold)"), ("out", "Out of stock"), ("ok", "Above threshold")]

    def queryset(self, request, queryset):
        tracked = queryset.filter(track_stock=True)
        if self.value() == "low":
            return tracked.filter(stock_quantity__lte=F("low_stock_threshold"))
        if self.value() == "out":
            return tracked.filter(stock_quantity=0)
        if self.value() == "ok":
            return tracked.filter(stock_quantity__gt=F("low_stock_threshold"))
        return queryset


class StockAdjustForm(OperationForm):
    change = forms.IntegerField(
        min_value=-1_000_000, max_value=1_000_000, help_text="Units to add (positive) or remove (negative)."
    )
    stock_reason = forms.ChoiceField(
        label="Kind of movement",
        choices=[
            (r.value, r.label) for r in (StockReason.ADJUSTMENT, StockReason.MANUAL, StockReason.RETURN)
        ],
    )
    field_order = ["change", "stock_reason", "reason"]

    def clean_change(self):
        change = self.cleaned_data["change"]
        if change == 0:
            raise forms.ValidationError("The change cannot be zero.")
        return change


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    change_form_template = "admin/shops/item/change_form.html"
    list_display = ["sku", "name", "shop", "kind", "price", "stock", "low_stock_threshold", "is_active"]
    list_filter = [LowStockFilter, SHOP_FILTER, "kind", "is_active", "track_stock"]
    search_fields = ["sku", "name", "category", "shop__name", "shop__slug"]
    list_select_related = ["shop"]
    autocomplete_fields = ["shop"]
    readonly_fields = ["stock_quantity", "created_at", "updated_at"]
    inlines = [StockHistoryInline]

    def has_delete_permission(self, request, obj=None):
        # Deleting an item would take its stock and its stock history with it, outside
        # stock_update: take it off sale instead (untick "is active"), which keeps both.
        return False

    @admin.display(description="stock", ordering="stock_quantity")
    def stock(self, obj):
        if obj.is_low_stock:
            return format_html(
                '<span class="low-stock" style="color:#ba2121;font-weight:bold" title="at or below {}">'
                "{} ⚠ low</span>",
                obj.low_stock_threshold,
                obj.stock_quantity,
            )
        return obj.stock_quantity

    def get_urls(self):
        return [
            path(
                "<uuid:item_id>/stock/",
                self.admin_site.admin_view(self.adjust_stock_view),
                name="shops_item_adjust_stock",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "can_adjust_stock": self.has_change_permission(request)}
        return super().change_view(request, object_id, form_url, extra_context)

    def adjust_stock_view(self, request, item_id):
        item = get_object_or_404(Item.objects.select_related("shop"), pk=item_id)

        def perform(data):
            done, entry = services.stock_update(
                item=item,
                change=data["change"],
                reason=data["stock_reason"],
                user=request.user,
                note=data["reason"],
                reference="admin",
            )
            return with_reason(
                f"Stock of {done.sku} {entry.change:+d} ({entry.reason}): "
                f"{entry.quantity_before} → {entry.quantity_after}.",
                data["reason"],
            )

        return operation_view(
            self,
            request,
            obj=item,
            form_class=StockAdjustForm,
            perform=perform,
            title=f"Adjust the stock of {item.sku} {item.name}",
            form_id="adjust-stock-form",
            success_url=reverse("admin:shops_item_change", args=[item.pk]),
            allowed=self.has_change_permission(request, item),
            initial={"stock_reason": StockReason.ADJUSTMENT},
            extra_context={
                "summary": [
                    ("Shop", item.shop.name),
                    ("Item", f"{item.sku} {item.name}"),
                    ("Stock now", item.stock_quantity),
                    ("Low-stock threshold", item.low_stock_threshold),
                ],
                "submit_label": "Adjust stock",
            },
        )

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
    list_display = ["created_at", "item", "change", "quantity_after", "reason", "user"]
    list_filter = ["reason", ("item__shop", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["item__sku", "item__name", "reference", "note"]
    list_select_related = ["item", "user"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class OrderLineInline(ReadOnlyInline):
    model = FormSubmissionLine
    verbose_name = "order line"
    verbose_name_plural = "order lines"
    fields = ["item", "item_name", "sku", "quantity", "unit_price", "unit_cost", "line_total"]
    readonly_fields = fields


class OrderResource(resources.ModelResource):
    class Meta:
        model = FormSubmission
        fields = (
            "id",
            "submitted_at",
            "shop__name",
            "status",
            "customer_name",
            "customer_phone",
            "customer_email",
            "total",
            "currency",
            "payment_method__name",
            "status_changed_at",
            "cancelled_at",
        )
        export_order = fields


class OrderTransitionForm(OperationForm):
    # Any status: whether the move is legal is the service's call (a stale page gets its 409
    # as an error message), so the admin holds no copy of the transition table's rules.
    status = forms.ChoiceField(choices=OrderStatus.choices)


@admin.register(FormSubmission)
class OrderAdmin(CsvExportMixin, admin.ModelAdmin):
    resource_classes = [OrderResource]
    change_form_template = "admin/shops/formsubmission/change_form.html"
    list_display = ["id", "shop", "status", "customer_name", "total", "currency", "submitted_at"]
    list_filter = ["status", SHOP_FILTER]
    search_fields = ["=id", "customer_name", "customer_phone", "customer_email", "shop__name"]
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

    def has_delete_permission(self, request, obj=None):
        # Deleting an order would lose the stock it took: cancel it (the buttons above), which
        # restocks through order_transition.
        return False

    def get_urls(self):
        return [
            path(
                "<uuid:order_id>/transition/",
                self.admin_site.admin_view(self.transition_view),
                name="shops_formsubmission_transition",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        order = self.get_object(request, object_id)
        next_statuses = sorted(ORDER_TRANSITIONS.get(order.status, ())) if order else []
        extra_context = {
            **(extra_context or {}),
            "can_transition": self.has_change_permission(request),
            "next_statuses": [(value, OrderStatus(value).label) for value in next_statuses],
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def transition_view(self, request, order_id):
        order = get_object_or_404(FormSubmission.objects.select_related("shop"), pk=order_id)

        def perform(data):
            before = order.status
            done = services.order_transition(
                shop_id=order.shop_id, order_id=order.pk, to=data["status"], user=request.user
            )
            restock = " (stock given back)" if done.status == OrderStatus.CANCELLED else ""
            return with_reason(f"Order {done.pk}: {before} → {done.status}{restock}.", data["reason"])

        return operation_view(
            self,
            request,
            obj=order,
            form_class=OrderTransitionForm,
            perform=perform,
            title=f"Move order {order.pk}",
            form_id="order-transition-form",
            success_url=reverse("admin:shops_formsubmission_change", args=[order.pk]),
            allowed=self.has_change_permission(request, order),
            initial={"status": next(iter(sorted(ORDER_TRANSITIONS.get(order.status, ()))), None)},
            extra_context={
                "summary": [
                    ("Shop", order.shop.name),
                    ("Status", order.get_status_display()),
                    ("Customer", order.customer_name),
                    ("Total", f"{order.total} {order.currency}"),
                ],
                "submit_label": "Move order",
            },
        )


@admin.register(Form)
class FormAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "shop", "is_active"]
    list_filter = ["is_active", SHOP_FILTER]
    search_fields = ["name", "slug", "shop__name"]
    list_select_related = ["shop"]
    autocomplete_fields = ["shop"]


@admin.register(PaymentMethod)
class PaymentMethodAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "shop", "is_active"]
    list_filter = ["kind", "is_active", SHOP_FILTER]
    search_fields = ["name", "shop__name"]
    list_select_related = ["shop"]
    autocomplete_fields = ["shop"]


class MessageInline(ReadOnlyInline):
    model = Message
    fields = ["created_at", "direction", "sender", "text", "sent_by", "delivery_status", "attempts", "error"]
    readonly_fields = fields


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["customer_handle", "channel", "shop", "status", "last_message_at"]
    list_filter = ["channel", "status", SHOP_FILTER]
    date_hierarchy = "last_message_at"
    search_fields = ["customer_handle", "customer_name", "shop__name"]
    list_select_related = ["shop"]
    autocomplete_fields = ["shop"]
    inlines = [MessageInline]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "conversation",
        "sender",
        "direction",
        "is_ai",
        "delivery_status",
        "attempts",
    ]
    list_filter = ["sender", "direction", "is_ai", "delivery_status"]
    search_fields = ["text", "conversation__customer_handle", "provider_message_id"]
    date_hierarchy = "created_at"
    list_select_related = ["conversation"]
    readonly_fields = [
        "conversation",
        "direction",
        "sender",
        "text",
        "sent_by",
        "keyword_reply",
        "is_ai",
        "delivery_status",
        "attempts",
        "provider_message_id",
        "error",
        "next_attempt_at",
        "delivering_since",
        "sent_at",
    ]

    def has_add_permission(self, request):
        return False


@admin.register(KeywordReply)
class KeywordReplyAdmin(admin.ModelAdmin):
    list_display = ["__str__", "match", "priority", "is_active", "shop"]
    list_filter = ["match", "is_active", SHOP_FILTER]
    search_fields = ["reply", "shop__name"]
    list_select_related = ["shop"]
    autocomplete_fields = ["shop"]


@admin.register(SavedReply)
class SavedReplyAdmin(admin.ModelAdmin):
    list_display = ["title", "shortcut", "shop"]
    list_filter = [SHOP_FILTER]
    search_fields = ["title", "shortcut", "shop__name"]
    list_select_related = ["shop"]
    autocomplete_fields = ["shop"]


@admin.register(SocialIntegration)
class SocialIntegrationAdmin(admin.ModelAdmin):
    list_display = [
        "provider",
        "account_id",
        "account_name",
        "shop",
        "is_active",
        "needs_reauth",
        "token_expires_at",
    ]
    list_filter = ["provider", "is_active", "needs_reauth", SHOP_FILTER]
    search_fields = ["account_id", "account_name", "shop__name"]
    list_select_related = ["shop"]
    autocomplete_fields = ["shop"]
    # Tokens and webhook secrets are excluded from every admin form and list; they are set
    # through the API.
    exclude = ["access_token", "refresh_token", "channel_secret", "app_secret", "verify_token"]


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
    list_filter = ["status", "role", SHOP_FILTER]
    date_hierarchy = "created_at"
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


# --- plans ---------------------------------------------------------------------------------------


@admin.register(ShopPlan)
class ShopPlanAdmin(admin.ModelAdmin):
    """Plans and their limits, editable: an edit applies to every shop on the plan at once
    (limits are read live); prices apply to purchases and renewals opened afterwards."""

    list_display = [
        "code",
        "name",
        "price_monthly",
        "price_yearly",
        "currency",
        "max_items",
        "max_members",
        "max_forms",
        "max_outbound_messages_per_month",
        "is_active",
        "sort_order",
    ]
    list_editable = ["is_active", "sort_order"]
    ordering = ["sort_order", "code"]

    def get_readonly_fields(self, request, obj=None):
        # A code is what shops and payments refer to; a new plan gets one, an existing keeps it.
        return ["code"] if obj else []


class ShopPlanPaymentInline(ReadOnlyInline):
    model = ShopPlanPayment
    fk_name = "subscription"
    fields = ["payment", "plan", "billing_cycle", "period_start", "created_at"]
    readonly_fields = fields


@admin.register(ShopSubscription)
class ShopSubscriptionAdmin(admin.ModelAdmin):
    """Shop plan subscriptions. The state machine's fields are read-only here: status moves only
    through `shop_subscription_transition` (payments, the daily renewal task)."""

    list_display = ["shop", "plan", "status", "billing_cycle", "amount", "end_date", "auto_renew"]
    list_filter = ["status", "plan", "billing_cycle", "auto_renew"]
    search_fields = ["shop__name", "shop__slug", "shop__owner__email"]
    list_select_related = ["shop", "plan"]
    readonly_fields = [
        "shop",
        "plan",
        "status",
        "billing_cycle",
        "amount",
        "currency",
        "provider",
        "start_date",
        "end_date",
        "past_due_since",
        "created_at",
        "updated_at",
    ]
    inlines = [ShopPlanPaymentInline]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
