"""Shops: team, inventory with a chained stock history, order forms, chat, integrations.

Invariants the database itself holds (so no code path, admin edit or raw SQL can break them):
- stock_quantity ≥ 0, sku unique per shop, prices and costs ≥ 0;
- every StockHistory row has quantity_after = quantity_before + change, both ≥ 0, change ≠ 0;
- the history chains: a new row's quantity_before must equal the item's previous row's
  quantity_after, and its quantity_after must equal the item's stock at that moment (trigger);
- at commit, an item's newest history row says what its stock is (deferred constraint trigger),
  so stock can only move together with a history row;
- history rows are never updated (deleting old ones is the monthly cleanup's job);
- a cancelled order restocks an item at most once (unique cancellation reference per item).
"""

from decimal import Decimal

import pgtrigger
from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower

from config.models import UUIDModel
from config.status_guard import status_guard
from shops.crypto import EncryptedTextField

MONEY = {"max_digits": 12, "decimal_places": 2}
ZERO = Decimal("0.00")


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    STAFF = "staff", "Staff"
    VIEWER = "viewer", "Viewer"


class Shop(UUIDModel):
    class Plan(models.TextChoices):
        FREE = "free", "Free"
        BASIC = "basic", "Basic"
        PRO = "pro", "Pro"
        ENTERPRISE = "enterprise", "Enterprise"

    class PlanStatus(models.TextChoices):
        ACTIVE = "active", "Active"
        TRIALING = "trialing", "Trialing"
        PAST_DUE = "past_due", "Past due"
        CANCELLED = "cancelled", "Cancelled"

    class BillingCycle(models.TextChoices):
        MONTHLY = "monthly", "Monthly"
        YEARLY = "yearly", "Yearly"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_shops")
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    currency = models.CharField(max_length=3, default="THB")
    timezone = models.CharField(max_length=64, default="UTC")
    plan = models.CharField(max_length=20, choices=Plan.choices, default=Plan.FREE, db_index=True)
    plan_status = models.CharField(max_length=20, choices=PlanStatus.choices, default=PlanStatus.ACTIVE)
    plan_price = models.DecimalField(**MONEY, default=ZERO, validators=[MinValueValidator(ZERO)])
    billing_cycle = models.CharField(
        max_length=10, choices=BillingCycle.choices, default=BillingCycle.MONTHLY
    )

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(plan_price__gte=0), name="shop_plan_price_non_negative"),
        ]

    def __str__(self):
        return self.name


class TeamMember(UUIDModel):
    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="shop_memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.STAFF)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["shop", "user"], name="team_member_unique_per_shop"),
            models.UniqueConstraint(fields=["shop"], condition=Q(role="owner"), name="team_member_one_owner"),
            models.CheckConstraint(condition=Q(role__in=Role.values), name="team_member_role_valid"),
        ]

    def __str__(self):
        return f"{self.user} ({self.role}) @ {self.shop}"


class Item(UUIDModel):
    class Kind(models.TextChoices):
        PRODUCT = "product", "Product"
        SERVICE = "service", "Service"

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="items")
    sku = models.CharField(max_length=64)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="", max_length=5000)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.PRODUCT)
    category = models.CharField(max_length=100, blank=True, default="")
    price = models.DecimalField(**MONEY, default=ZERO, validators=[MinValueValidator(ZERO)])
    cost = models.DecimalField(**MONEY, default=ZERO, validators=[MinValueValidator(ZERO)])
    stock_quantity = models.IntegerField(default=0, validators=[MinValueValidator(0)])
    low_stock_threshold = models.IntegerField(default=5, validators=[MinValueValidator(0)])
    track_stock = models.BooleanField(default=True)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["shop", "sku"], name="item_sku_unique_per_shop"),
            models.CheckConstraint(condition=Q(stock_quantity__gte=0), name="item_stock_non_negative"),
            models.CheckConstraint(
                condition=Q(low_stock_threshold__gte=0), name="item_threshold_non_negative"
            ),
            models.CheckConstraint(condition=Q(price__gte=0), name="item_price_non_negative"),
            models.CheckConstraint(condition=Q(cost__gte=0), name="item_cost_non_negative"),
            models.CheckConstraint(condition=Q(kind__in=["product", "service"]), name="item_kind_valid"),
        ]
        indexes = [
            models.Index(fields=["shop", "category"], name="item_shop_category_idx"),
            models.Index(fields=["shop", "is_active", "name"], name="item_shop_active_idx"),
        ]
        triggers = [
            # Deferred to commit: the service updates the stock and writes the history row in
            # either order inside one transaction; what must hold is the state at commit.
            pgtrigger.Trigger(
                name="item_stock_matches_history",
                when=pgtrigger.After,
                operation=pgtrigger.Insert | pgtrigger.UpdateOf("stock_quantity"),
                timing=pgtrigger.Deferred,
                declare=[("current_stock", "integer"), ("last_after", "integer")],
                func="""
                SELECT stock_quantity INTO current_stock FROM shops_item WHERE id = NEW.id;
                IF NOT FOUND THEN RETURN NULL; END IF;
                SELECT quantity_after INTO last_after FROM shops_stockhistory
                    WHERE item_id = NEW.id ORDER BY id DESC LIMIT 1;
                IF COALESCE(last_after, 0) <> current_stock THEN
                    RAISE EXCEPTION 'stock of item % is % but its newest history row says %',
                        NEW.id, current_stock, last_after USING ERRCODE = '23514';
                END IF;
                RETURN NULL;
                """,
            ),
        ]

    def __str__(self):
        return f"{self.sku} {self.name}"

    @property
    def is_low_stock(self) -> bool:
        return self.track_stock and self.stock_quantity <= self.low_stock_threshold


class StockReason(models.TextChoices):
    MANUAL = "manual", "Manual"
    ORDER = "order", "Order"
    CANCELLATION = "cancellation", "Cancellation"
    RETURN = "return", "Return"
    ADJUSTMENT = "adjustment", "Adjustment"
    IMPORT = "import", "Import"


class StockHistory(models.Model):
    """One stock movement. A sequential primary key (never exposed in a URL) gives each item's
    rows a strict order; rows of one item are written under that item's row lock, so the order
    of ids is the order of the movements."""

    id = models.BigAutoField(primary_key=True)
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="stock_history")
    change = models.IntegerField()
    quantity_before = models.IntegerField()
    quantity_after = models.IntegerField()
    reason = models.CharField(max_length=20, choices=StockReason.choices)
    reference = models.CharField(max_length=100, blank=True, default="")
    note = models.CharField(max_length=500, blank=True, default="")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "stock history"
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity_before__gte=0), name="stock_history_before_non_negative"
            ),
            models.CheckConstraint(
                condition=Q(quantity_after__gte=0), name="stock_history_after_non_negative"
            ),
            models.CheckConstraint(condition=~Q(change=0), name="stock_history_change_non_zero"),
            models.CheckConstraint(
                condition=Q(quantity_after=models.F("quantity_before") + models.F("change")),
                name="stock_history_after_is_before_plus_change",
            ),
            models.CheckConstraint(
                condition=Q(reason__in=StockReason.values), name="stock_history_reason_valid"
            ),
            models.UniqueConstraint(
                fields=["item", "reference"],
                condition=Q(reason="cancellation"),
                name="stock_history_one_restock_per_order",
            ),
        ]
        indexes = [models.Index(fields=["item", "-id"], name="stock_history_item_idx")]
        triggers = [
            pgtrigger.Protect(name="stock_history_append_only", operation=pgtrigger.Update),
            pgtrigger.Trigger(
                name="stock_history_chains",
                when=pgtrigger.Before,
                operation=pgtrigger.Insert,
                declare=[("last_after", "integer"), ("current_stock", "integer")],
                func="""
                SELECT quantity_after INTO last_after FROM shops_stockhistory
                    WHERE item_id = NEW.item_id ORDER BY id DESC LIMIT 1;
                IF FOUND AND last_after <> NEW.quantity_before THEN
                    RAISE EXCEPTION 'stock history of item % does not chain: previous after %, new before %',
                        NEW.item_id, last_after, NEW.quantity_before USING ERRCODE = '23514';
                END IF;
                SELECT stock_quantity INTO current_stock FROM shops_item WHERE id = NEW.item_id;
                IF current_stock <> NEW.quantity_after THEN
                    RAISE EXCEPTION 'history row of item % says % but the stock is %',
                        NEW.item_id, NEW.quantity_after, current_stock USING ERRCODE = '23514';
                END IF;
                RETURN NEW;
                """,
            ),
        ]

    def __str__(self):
        return f"{self.item_id}: {self.quantity_before} → {self.quantity_after} ({self.reason})"


def default_form_fields() -> list:
    return [
        {"name": "name", "label": "Name", "type": "text", "required": True},
        {"name": "phone", "label": "Phone", "type": "phone", "required": True},
        {"name": "email", "label": "Email", "type": "email", "required": False},
        {"name": "address", "label": "Address", "type": "textarea", "required": True},
    ]


class Form(UUIDModel):
    """A public order form. Its `fields` describe the customer details it asks for; it offers
    every active item of its shop."""

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="forms")
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    description = models.TextField(blank=True, default="", max_length=5000)
    fields = models.JSONField(default=default_form_fields)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["-created_at", "id"]

    def __str__(self):
        return self.name


class PaymentMethod(UUIDModel):
    class Kind(models.TextChoices):
        BANK_TRANSFER = "bank_transfer", "Bank transfer"
        PROMPTPAY = "promptpay", "PromptPay"
        TRUEMONEY = "truemoney", "TrueMoney"
        CARD = "card", "Card"
        CASH_ON_DELIVERY = "cash_on_delivery", "Cash on delivery"
        OTHER = "other", "Other"

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="payment_methods")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    name = models.CharField(max_length=100)
    details = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self):
        return self.name


class OrderStatus(models.TextChoices):
    NEW = "new", "New"
    CONFIRMED = "confirmed", "Confirmed"
    PAID = "paid", "Paid"
    SHIPPED = "shipped", "Shipped"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"


# The transaction-local setting through which `order_transition` authorises its one status
# write (shops/states.py; the guard trigger on FormSubmission reads it).
ORDER_STATUS_SETTING = "shops.order_transition"


class FormSubmission(UUIDModel):
    """An order placed through a public form. `status` moves only through
    `shops.services.order_transition` (the table is in shops/states.py; a trigger refuses any
    other write)."""

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="orders")
    form = models.ForeignKey(
        Form, null=True, blank=True, on_delete=models.SET_NULL, related_name="submissions"
    )
    customer_name = models.CharField(max_length=200, blank=True, default="")
    customer_phone = models.CharField(max_length=40, blank=True, default="")
    customer_email = models.EmailField(max_length=254, blank=True, default="")
    customer_address = models.TextField(max_length=1000, blank=True, default="")
    customer_extra = models.JSONField(default=dict, blank=True)
    note = models.TextField(max_length=2000, blank=True, default="")
    total = models.DecimalField(**MONEY, default=ZERO)
    currency = models.CharField(max_length=3, default="THB")
    status = models.CharField(max_length=20, choices=OrderStatus.choices, default=OrderStatus.NEW)
    payment_method = models.ForeignKey(
        PaymentMethod, null=True, blank=True, on_delete=models.SET_NULL, related_name="orders"
    )
    submitted_at = models.DateTimeField(db_index=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-submitted_at", "id"]
        verbose_name = "order"
        constraints = [
            models.CheckConstraint(condition=Q(total__gte=0), name="order_total_non_negative"),
            models.CheckConstraint(condition=Q(status__in=OrderStatus.values), name="order_status_valid"),
        ]
        indexes = [
            # The order list's filter + its full ordering (ending with the id): keyset pages are
            # index range scans.
            models.Index(fields=["shop", "status", "-submitted_at", "id"], name="order_shop_status_idx"),
            models.Index(fields=["shop", "-submitted_at", "id"], name="order_shop_submitted_idx"),
        ]
        triggers = [
            status_guard(
                name="order_status_guard",
                setting=ORDER_STATUS_SETTING,
                writer="shops.services.order_transition",
            ),
        ]

    def __str__(self):
        return f"order {self.id} ({self.status})"


class FormSubmissionLine(UUIDModel):
    """One line of an order. Price and cost are copied at order time: later price changes do not
    rewrite history, and profit analytics use what the item cost then."""

    submission = models.ForeignKey(FormSubmission, on_delete=models.CASCADE, related_name="lines")
    # RESTRICT, not PROTECT: deleting a whole shop may take its items with its orders.
    item = models.ForeignKey(Item, on_delete=models.RESTRICT, related_name="order_lines")
    item_name = models.CharField(max_length=200)
    sku = models.CharField(max_length=64)
    quantity = models.IntegerField()
    unit_price = models.DecimalField(**MONEY)
    unit_cost = models.DecimalField(**MONEY)
    line_total = models.DecimalField(**MONEY)
    # Whether ordering took stock (the item tracked stock then): cancelling gives back only that.
    stock_deducted = models.BooleanField(default=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="order_line_quantity_positive"),
            models.CheckConstraint(
                condition=Q(unit_price__gte=0) & Q(unit_cost__gte=0), name="order_line_money_non_negative"
            ),
            models.UniqueConstraint(fields=["submission", "item"], name="order_line_one_per_item"),
        ]

    def __str__(self):
        return f"{self.quantity} × {self.sku}"


class Conversation(UUIDModel):
    class Channel(models.TextChoices):
        FACEBOOK = "facebook", "Facebook"
        INSTAGRAM = "instagram", "Instagram"
        LINE = "line", "LINE"
        WHATSAPP = "whatsapp", "WhatsApp"
        TIKTOK = "tiktok", "TikTok"
        WEB = "web", "Web chat"
        OTHER = "other", "Other"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="conversations")
    channel = models.CharField(max_length=20, choices=Channel.choices)
    customer_handle = models.CharField(max_length=200)
    customer_name = models.CharField(max_length=200, blank=True, default="")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    last_message_at = models.DateTimeField(null=True, blank=True)
    # The channel integration the customer wrote through (set by its webhook): outbound messages
    # go out through it. Without one, connectors deliver them (the shop's outbound feed).
    integration = models.ForeignKey(
        "SocialIntegration", null=True, blank=True, on_delete=models.SET_NULL, related_name="conversations"
    )

    class Meta:
        ordering = ["-last_message_at", "-created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["shop", "channel", "customer_handle"], name="conversation_unique_per_customer"
            ),
        ]
        indexes = [models.Index(fields=["shop", "-last_message_at"], name="conversation_shop_recent_idx")]

    def __str__(self):
        return f"{self.channel}:{self.customer_handle}"


class Message(UUIDModel):
    class Direction(models.TextChoices):
        INBOUND = "inbound", "Inbound"
        OUTBOUND = "outbound", "Outbound"

    class Sender(models.TextChoices):
        CUSTOMER = "customer", "Customer"
        STAFF = "staff", "Staff"
        BOT = "bot", "Bot"
        AI = "ai", "AI"

    class DeliveryStatus(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    direction = models.CharField(max_length=10, choices=Direction.choices)
    sender = models.CharField(max_length=10, choices=Sender.choices)
    text = models.TextField(max_length=5000)
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    keyword_reply = models.ForeignKey(
        "KeywordReply", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Platform metrics count AI-sent messages per day; the flag is derived so it can never disagree.
    is_ai = models.GeneratedField(
        expression=Q(sender="ai"), output_field=models.BooleanField(), db_persist=True
    )
    # Delivery of an outbound message (null for inbound ones). `attempts` counts the calls to the
    # channel's API; `delivering_since` is the claim a delivery task holds while it calls (a
    # message is claimed by one task at a time and never sent again once `sent`).
    delivery_status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, null=True, blank=True, db_index=True
    )
    # Database defaults too, so rows inserted by raw SQL (benchmarks, old dumps) stay valid.
    attempts = models.PositiveIntegerField(default=0, db_default=0)
    # The channel's id of the message: LINE's message id or Messenger's `mid`, outbound (what
    # the channel answered) and inbound (stored once per conversation).
    provider_message_id = models.CharField(max_length=255, blank=True, default="", db_default="")
    error = models.CharField(max_length=1000, blank=True, default="", db_default="")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivering_since = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(direction="inbound", sender="customer")
                    | Q(direction="outbound", sender__in=["staff", "bot", "ai"])
                ),
                name="message_direction_matches_sender",
            ),
            models.CheckConstraint(
                condition=(
                    Q(direction="inbound", delivery_status__isnull=True)
                    | Q(direction="outbound", delivery_status__in=["pending", "sent", "failed"])
                ),
                name="message_delivery_status_for_outbound",
            ),
            # A channel's redelivered event adds no second copy of the customer's message.
            models.UniqueConstraint(
                fields=["conversation", "provider_message_id"],
                condition=Q(direction="inbound") & ~Q(provider_message_id=""),
                name="message_inbound_provider_id_once",
            ),
        ]
        indexes = [
            models.Index(fields=["conversation", "created_at", "id"], name="message_conversation_idx"),
            models.Index(fields=["created_at"], condition=Q(sender="ai"), name="message_ai_created_idx"),
            # The connectors' outbound feed walks the pending messages in (created_at, id) order.
            models.Index(
                fields=["created_at", "id"],
                condition=Q(delivery_status="pending"),
                name="message_pending_idx",
            ),
        ]

    def __str__(self):
        return f"{self.sender}: {self.text[:40]}"


class KeywordReply(UUIDModel):
    class Match(models.TextChoices):
        EXACT = "exact", "Exact"
        CONTAINS = "contains", "Contains"

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="keyword_replies")
    keywords = ArrayField(models.CharField(max_length=100))
    match = models.CharField(max_length=10, choices=Match.choices, default=Match.CONTAINS)
    reply = models.TextField(max_length=5000)
    priority = models.IntegerField(default=0)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["-priority", "created_at", "id"]
        verbose_name_plural = "keyword replies"
        constraints = [
            models.CheckConstraint(condition=Q(keywords__len__gte=1), name="keyword_reply_has_keywords"),
        ]
        indexes = [models.Index(fields=["shop", "is_active", "-priority"], name="keyword_reply_lookup_idx")]

    def __str__(self):
        return ", ".join(self.keywords)


class SavedReply(UUIDModel):
    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="saved_replies")
    title = models.CharField(max_length=200)
    text = models.TextField(max_length=5000)
    shortcut = models.CharField(max_length=50, blank=True, default="")

    class Meta:
        ordering = ["title", "id"]
        verbose_name_plural = "saved replies"
        constraints = [
            models.UniqueConstraint(
                fields=["shop", "shortcut"],
                condition=~Q(shortcut=""),
                name="saved_reply_shortcut_unique_per_shop",
            ),
        ]

    def __str__(self):
        return self.title


class SocialIntegration(UUIDModel):
    class Provider(models.TextChoices):
        FACEBOOK = "facebook", "Facebook"
        INSTAGRAM = "instagram", "Instagram"
        LINE = "line", "LINE"
        WHATSAPP = "whatsapp", "WhatsApp"
        TIKTOK = "tiktok", "TikTok"

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="integrations")
    provider = models.CharField(max_length=20, choices=Provider.choices)
    account_id = models.CharField(max_length=200)
    account_name = models.CharField(max_length=200, blank=True, default="")
    # Ciphertext in the database (shops.crypto); never serialized, never shown in admin.
    access_token = EncryptedTextField(blank=True, default="")
    refresh_token = EncryptedTextField(blank=True, default="")
    # Webhook secrets, encrypted and write-only like the tokens: LINE signs with the channel
    # secret; Messenger with the app secret, and its subscription handshake echoes verify_token.
    channel_secret = EncryptedTextField(blank=True, default="")
    app_secret = EncryptedTextField(blank=True, default="")
    verify_token = EncryptedTextField(blank=True, default="")
    token_expires_at = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    # Set when the channel refused the access token (401): nothing is sent through the
    # integration until a new token is stored, and the shop's owner is emailed once.
    needs_reauth = models.BooleanField(default=False, db_default=False)

    class Meta:
        ordering = ["provider", "account_id", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["shop", "provider", "account_id"], name="integration_unique_account_per_shop"
            ),
        ]

    def __str__(self):
        return f"{self.provider}:{self.account_id}"


class InboundApiKey(UUIDModel):
    """Binds a service API key with scope `shops:inbound` to the one shop it may post into.

    A key without a binding, or bound to another shop, is answered 404 by the inbound endpoint
    (the other shop's existence is not revealed). The key lives in accounts, which must not
    know about shops, so the binding is kept here.
    """

    api_key = models.OneToOneField(
        "accounts.ServiceApiKey", on_delete=models.CASCADE, related_name="inbound_binding"
    )
    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="inbound_keys")

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = "inbound API key binding"

    def __str__(self):
        return f"{self.api_key_id} → {self.shop}"


class ShopInvitation(UUIDModel):
    """An invitation to join a shop's team. Only the SHA-256 of its token is stored; accepting
    it (as the invited email) creates the TeamMember. At most one pending invitation per
    (shop, email), enforced by a partial unique index."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ACCEPTED = "accepted", "Accepted"
        REVOKED = "revoked", "Revoked"
        EXPIRED = "expired", "Expired"

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(max_length=254)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.STAFF)
    token_hash = models.CharField(max_length=64, unique=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                "shop",
                Lower("email"),
                condition=Q(status="pending"),
                name="shop_invitation_one_pending_per_email",
            ),
            models.CheckConstraint(
                condition=Q(role__in=["admin", "staff", "viewer"]), name="shop_invitation_role_assignable"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "accepted", "revoked", "expired"]),
                name="shop_invitation_status_valid",
            ),
        ]

    def __str__(self):
        return f"{self.email} → {self.shop} ({self.status})"


# -- plans ------------------------------------------------------------------------------------

SHOP_SUBSCRIPTION_STATUS_SETTING = "shops.shop_subscription_transition"
# A past-due shop plan keeps its limits this long after the failed payment (as subscriptions do).
SHOP_PLAN_GRACE_DAYS = 3
FREE_SHOP_PLAN = "free"


class ShopPlan(UUIDModel):
    """What a shop can buy: prices per billing cycle (THB) and the limits it gives, editable in
    the admin. A limit of null means unlimited. The `free` plan (price 0) is what every shop has
    without a live subscription; it cannot be bought. A subscription copies the price it was
    paid at, so later edits change only later periods; limits are read live from the plan."""

    # What `Shop.plan` names (seeded: free, basic, pro, enterprise).
    code = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100)
    price_monthly = models.DecimalField(**MONEY, default=ZERO)
    price_yearly = models.DecimalField(**MONEY, default=ZERO)
    currency = models.CharField(max_length=3, default="THB")
    max_items = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: unlimited.")
    max_members = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: unlimited.")
    max_forms = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: unlimited.")
    max_outbound_messages_per_month = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Staff, bot and AI messages per calendar month (UTC). Empty: unlimited.",
    )
    is_active = models.BooleanField(default=True, db_index=True)
    sort_order = models.PositiveSmallIntegerField(default=0)

    LIMITS = ("max_items", "max_members", "max_forms", "max_outbound_messages_per_month")

    class Meta:
        ordering = ["sort_order", "price_monthly", "code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(price_monthly__gte=0, price_yearly__gte=0), name="shopplan_prices_non_negative"
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.code})"

    def price_for(self, billing_cycle: str) -> Decimal:
        return self.price_yearly if billing_cycle == Shop.BillingCycle.YEARLY else self.price_monthly

    def limits(self) -> dict:
        return {name: getattr(self, name) for name in self.LIMITS}


class ShopSubscription(UUIDModel):
    """A shop's paid plan. Only `shops.services.shop_subscription_transition` changes `status`
    (the table is in shops/states.py; a trigger refuses any other write); at most one per shop is
    live (`active` or `past_due`), held by a partial unique index. Without a live one the shop is
    on the free plan. `Shop.plan`, `plan_status`, `plan_price` and `billing_cycle` mirror it (the
    admin lists and platform MRR read them)."""

    LIVE_STATUSES = ("active", "past_due")

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        PAST_DUE = "past_due", "Past due"
        EXPIRED = "expired", "Expired"

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="subscriptions")
    plan = models.ForeignKey(ShopPlan, on_delete=models.PROTECT, related_name="subscriptions")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    billing_cycle = models.CharField(max_length=10, choices=Shop.BillingCycle.choices)
    amount = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3, default="THB")
    provider = models.CharField(max_length=16, help_text="Renewals are paid through it.")
    start_date = models.DateTimeField()
    end_date = models.DateTimeField()
    auto_renew = models.BooleanField(default=True)
    past_due_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-start_date", "id"]
        indexes = [models.Index(fields=["status", "end_date"], name="shopsub_status_end_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0), name="shopsub_amount_gte_0"),
            models.CheckConstraint(
                condition=Q(end_date__gt=models.F("start_date")), name="shopsub_end_after_start"
            ),
            models.UniqueConstraint(
                fields=["shop"],
                condition=Q(status__in=["active", "past_due"]),
                name="shopsub_one_live_per_shop",
            ),
            models.CheckConstraint(
                condition=~Q(status="past_due") | Q(past_due_since__isnull=False),
                name="shopsub_past_due_has_since",
            ),
        ]
        triggers = [
            status_guard(
                name="shop_subscription_status_guard",
                setting=SHOP_SUBSCRIPTION_STATUS_SETTING,
                writer="shops.services.shop_subscription_transition",
            ),
        ]

    def __str__(self):
        return f"{self.plan.code} plan of {self.shop} ({self.status})"


class ShopPlanPayment(UUIDModel):
    """What one shop-plan payment (a credits Payment with purpose `shop_plan`) buys: the plan and
    cycle for a shop, and for a renewal the subscription and the start of the period it pays for
    (one renewal payment per subscription and period, held by a partial unique index)."""

    payment = models.OneToOneField("credits.Payment", on_delete=models.PROTECT, related_name="shop_plan")
    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="plan_payments")
    plan = models.ForeignKey(ShopPlan, on_delete=models.PROTECT, related_name="payments")
    billing_cycle = models.CharField(max_length=10, choices=Shop.BillingCycle.choices)
    subscription = models.ForeignKey(
        ShopSubscription, on_delete=models.CASCADE, null=True, blank=True, related_name="payments"
    )
    period_start = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "period_start"],
                condition=Q(subscription__isnull=False, period_start__isnull=False),
                name="shopplanpayment_one_renewal_per_period",
            ),
        ]

    def __str__(self):
        return f"{self.plan.code} ({self.billing_cycle}) for {self.shop}"
