"""Reads for shops. Every queryset here is already scoped to one shop or one user."""

from uuid import UUID

from django.db.models import F, Q, QuerySet

from shops.models import (
    Conversation,
    Form,
    FormSubmission,
    Item,
    Message,
    Shop,
    ShopPlan,
    StockHistory,
    TeamMember,
)


def shop_list_for_user(*, user) -> QuerySet[Shop]:
    """The user's shops, each annotated with `my_role` (the filter's join is reused: one row per shop)."""
    return Shop.objects.filter(members__user=user).annotate(my_role=F("members__role")).order_by("name", "id")


def membership_get(*, user, shop_id: UUID) -> TeamMember | None:
    """The caller's membership of this shop (with the shop), or None when they are not a member."""
    return TeamMember.objects.select_related("shop", "shop__owner").filter(shop_id=shop_id, user=user).first()


def member_list(*, shop: Shop) -> QuerySet[TeamMember]:
    return TeamMember.objects.filter(shop=shop).select_related("user").order_by("created_at", "id")


def item_list(*, shop: Shop) -> QuerySet[Item]:
    return Item.objects.filter(shop=shop).order_by("name", "id")


def low_stock_q() -> Q:
    return Q(track_stock=True, stock_quantity__lte=F("low_stock_threshold"))


def item_list_low_stock(*, shop: Shop | UUID) -> QuerySet[Item]:
    """Tracked items at or below their threshold, emptiest first."""
    shop_id = shop.pk if isinstance(shop, Shop) else shop
    return Item.objects.filter(low_stock_q(), shop_id=shop_id, is_active=True).order_by(
        "stock_quantity", "name", "id"
    )


get_low_stock_items = item_list_low_stock


def stock_history_list(*, item: Item) -> QuerySet[StockHistory]:
    return StockHistory.objects.filter(item=item).select_related("user").order_by("-id")


def form_get_public(*, slug: str) -> Form | None:
    return Form.objects.select_related("shop").filter(slug=slug, is_active=True).first()


def form_public_items(*, form: Form) -> QuerySet[Item]:
    return Item.objects.filter(shop_id=form.shop_id, is_active=True).order_by("name", "id")


def order_list(*, shop: Shop) -> QuerySet[FormSubmission]:
    return (
        FormSubmission.objects.filter(shop=shop)
        .select_related("payment_method", "form")
        .prefetch_related("lines")
        .order_by("-submitted_at", "id")
    )


def conversation_list(*, shop: Shop) -> QuerySet[Conversation]:
    return Conversation.objects.filter(shop=shop).order_by(
        F("last_message_at").desc(nulls_last=True), "-created_at", "id"
    )


def outbound_message_list(*, shop_id) -> QuerySet[Message]:
    """The shop's outbound messages a connector is to deliver: `pending`, in conversations no
    channel integration delivers, oldest first (the order ends with the id, so keyset pages work)."""
    return (
        Message.objects.filter(
            conversation__shop_id=shop_id,
            conversation__integration__isnull=True,
            direction=Message.Direction.OUTBOUND,
            delivery_status=Message.DeliveryStatus.PENDING,
        )
        .select_related("conversation")
        .order_by("created_at", "id")
    )


def message_list(*, conversation: Conversation) -> QuerySet[Message]:
    return (
        Message.objects.filter(conversation=conversation)
        .select_related("sent_by")
        .order_by("created_at", "id")
    )


def shop_plan_list():
    """Plans on sale: active, paid (the free plan is what a shop has without one)."""
    return ShopPlan.objects.filter(is_active=True)


def shop_plan_get(*, code: str) -> ShopPlan | None:
    return ShopPlan.objects.filter(code=code, is_active=True).first()
