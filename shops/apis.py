"""The shops API. Every `/api/shops/<shop_id>/…` view first resolves the caller's
membership: not a member → 404 (the shop's existence is not revealed), a role without the
action → 403 (shops.permissions). Plain catalogue resources use generic views scoped to the shop;
stock, orders and chat go through explicit endpoints calling one service each."""

from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.permissions import SAFE_METHODS, AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import ApiKeyAuthentication, JWTCookieOrHeaderAuthentication
from accounts.models import ServiceApiKey
from accounts.permissions import IsServiceKeyWithScope, IsUserAccount
from config.exceptions import ApplicationError, Forbidden, NotFound, error_body
from config.idempotency import idempotent
from config.openapi import webhook_ack, whole_body_patch
from config.throttling import ScopedRateThrottle
from credits.serializers import PaymentSerializer
from credits.webhook_receiver import webhook_response
from shops import channel_webhooks, selectors, services
from shops.filters import ConversationFilter, ItemFilter, OrderFilter
from shops.models import (
    Conversation,
    Form,
    Item,
    KeywordReply,
    PaymentMethod,
    SavedReply,
    Shop,
    SocialIntegration,
)
from shops.permissions import Action, role_allows
from shops.serializers import (
    ConversationSerializer,
    ConversationUpdateSerializer,
    FormSerializer,
    InboundSerializer,
    IntegrationSerializer,
    InvitationSerializer,
    ItemCreateSerializer,
    ItemSerializer,
    KeywordReplySerializer,
    MemberAddSerializer,
    MemberSerializer,
    MemberUpdateSerializer,
    MessageSendSerializer,
    MessageSerializer,
    OrderSerializer,
    OrderStatusSerializer,
    OrderSubmitSerializer,
    OutboundAckSerializer,
    OutboundMessageSerializer,
    PaymentMethodSerializer,
    PublicItemSerializer,
    PublicOrderSerializer,
    PublicPaymentMethodSerializer,
    SavedReplySerializer,
    ShopDetailSerializer,
    ShopInputSerializer,
    ShopPlanPurchaseSerializer,
    ShopPlanSerializer,
    ShopSerializer,
    StockChangeSerializer,
    StockHistorySerializer,
)
from shops.services.inbound_keys import inbound_key_may_post
from shops.services.invitations import invitation_accept, invitation_create
from shops.services.plans import shop_plan_auto_renew_set, shop_plan_purchase_start

INBOUND_SCOPE = "shops:inbound"
METHODS = ["get", "post", "patch", "delete", "head", "options"]


def _not_found() -> NotFound:
    return NotFound("Not found.")


class ShopScopedMixin:
    """Resolves `self.shop` and `self.membership` from the URL and enforces the role table.

    `read_action` guards safe methods, `write_action` everything else.
    """

    permission_classes = [IsUserAccount]
    read_action = Action.READ
    write_action = Action.MANAGE
    http_method_names = METHODS

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # Only for the schema generator (every view overrides get_queryset with the shop scope).
        serializer = getattr(cls, "serializer_class", None)
        model = getattr(getattr(serializer, "Meta", None), "model", None)
        if model is not None:
            cls.queryset = model.objects.none()

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        membership = selectors.membership_get(user=request.user, shop_id=kwargs["shop_id"])
        if membership is None:
            raise _not_found()
        self.membership = membership
        self.shop = membership.shop
        action = self.read_action if request.method in SAFE_METHODS else self.write_action
        if not role_allows(membership.role, action):
            raise Forbidden(f"Your role ({membership.role}) may not do this.")

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "shop": getattr(self, "shop", None)}


# --- shops and team ---------------------------------------------------------------------------


class ShopListCreateApi(generics.ListAPIView):
    """GET: the shops the caller belongs to, with their role. POST: create one (caller is owner)."""

    permission_classes = [IsUserAccount]
    serializer_class = ShopSerializer
    http_method_names = ["get", "post", "head", "options"]

    queryset = Shop.objects.none()  # for the schema generator; get_queryset scopes to the caller

    def get_queryset(self):
        return selectors.shop_list_for_user(user=self.request.user)

    @extend_schema(request=ShopInputSerializer, responses={201: ShopSerializer})
    def post(self, request):
        serializer = ShopInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        shop = services.shop_create(owner=request.user, **serializer.validated_data)
        return Response(ShopSerializer(shop, context={"role": "owner"}).data, status=status.HTTP_201_CREATED)


class ShopDetailApi(ShopScopedMixin, APIView):
    write_action = Action.OWN

    @extend_schema(responses=ShopDetailSerializer)
    def get(self, request, shop_id):
        """The shop, with its plan's limits and current usage under `plan_details`."""
        return Response(ShopDetailSerializer(self.shop, context={"role": self.membership.role}).data)

    @extend_schema(request=ShopInputSerializer, responses=ShopSerializer)
    def patch(self, request, shop_id):
        serializer = ShopInputSerializer(self.shop, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        shop = services.shop_update(shop=self.shop, **serializer.validated_data)
        return Response(ShopSerializer(shop, context={"role": self.membership.role}).data)

    @extend_schema(responses={204: None})
    def delete(self, request, shop_id):
        services.shop_delete(shop=self.shop)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ShopPlanListApi(generics.ListAPIView):
    """Shop plans on sale, with their prices per billing cycle and their limits. Public."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    serializer_class = ShopPlanSerializer

    def get_queryset(self):
        return selectors.shop_plan_list()


class ShopPlanPurchaseApi(ShopScopedMixin, APIView):
    """Buy a plan for the shop (owner only; other roles 403, non-members 404) → a `pending`
    payment with the provider's checkout; the provider's signed webhook completes it and the
    plan becomes active. 409 `already_subscribed` while an active plan renews by itself.
    Idempotent with an `Idempotency-Key` header."""

    write_action = Action.OWN
    http_method_names = ["post", "options"]

    @extend_schema(
        summary="Buy a plan for the shop",
        request=ShopPlanPurchaseSerializer,
        responses={201: PaymentSerializer},
    )
    @idempotent
    def post(self, request, shop_id):
        if not isinstance(request.data, dict):
            raise ApplicationError(
                "Invalid input.",
                code="validation_error",
                fields={"non_field_errors": ["Expected a JSON object."]},
            )
        serializer = ShopPlanPurchaseSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        plan = selectors.shop_plan_get(code=data["plan"])
        if plan is None:
            raise ApplicationError(
                "Invalid input.", code="validation_error", fields={"plan": ["No such plan."]}
            )
        payment = shop_plan_purchase_start(
            shop=self.shop,
            user=request.user,
            plan=plan,
            billing_cycle=data["billing_cycle"],
            provider=data["provider"],
        )
        return Response(PaymentSerializer(payment).data, status=status.HTTP_201_CREATED)


class ShopPlanCancelApi(ShopScopedMixin, APIView):
    """Stop renewing the shop's plan (owner only): it stays until its period ends, then the shop
    is back on `free`. Idempotent; the shop as `GET /api/shops/<id>` shows it."""

    write_action = Action.OWN
    http_method_names = ["post", "options"]

    @extend_schema(summary="Stop renewing the shop's plan", request=None, responses=ShopDetailSerializer)
    def post(self, request, shop_id):
        shop_plan_auto_renew_set(shop=self.shop, auto_renew=False)
        return Response(ShopDetailSerializer(self.shop, context={"role": self.membership.role}).data)


class MemberListCreateApi(ShopScopedMixin, generics.ListAPIView):
    serializer_class = MemberSerializer

    def get_queryset(self):
        return selectors.member_list(shop=self.shop)

    @extend_schema(request=MemberAddSerializer, responses={202: InvitationSerializer})
    def post(self, request, shop_id):
        """Invite {email, role}: the invitee joins by accepting the emailed link. The answer is
        the same whether or not the address has an account."""
        serializer = MemberAddSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        invitation = invitation_create(shop=self.shop, invited_by=request.user, **serializer.validated_data)
        return Response(InvitationSerializer(invitation).data, status=status.HTTP_202_ACCEPTED)


class InvitationAcceptApi(APIView):
    """Join a shop's team with an invitation token, signed in as the invited address. An
    unknown token or another person's invitation is 404; a used one 409."""

    @extend_schema(
        request=None,
        responses={
            201: inline_serializer(
                "InvitationAcceptOutput", {"shop": ShopSerializer(), "member": MemberSerializer()}
            )
        },
    )
    def post(self, request, token):
        member = invitation_accept(token=token, user=request.user)
        return Response(
            {
                "shop": ShopSerializer(member.shop, context={"role": member.role}).data,
                "member": MemberSerializer(member).data,
            },
            status=status.HTTP_201_CREATED,
        )


class MemberDetailApi(ShopScopedMixin, generics.RetrieveAPIView):
    serializer_class = MemberSerializer
    lookup_url_kwarg = "member_id"

    def get_queryset(self):
        return selectors.member_list(shop=self.shop)

    @extend_schema(request=MemberUpdateSerializer, responses=MemberSerializer)
    @whole_body_patch
    def patch(self, request, shop_id, member_id):
        serializer = MemberUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        member = services.member_update_role(member=self.get_object(), **serializer.validated_data)
        return Response(MemberSerializer(member).data)

    def delete(self, request, shop_id, member_id):
        services.member_remove(member=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- items and stock --------------------------------------------------------------------------


class ItemListCreateApi(ShopScopedMixin, generics.ListAPIView):
    serializer_class = ItemSerializer
    filterset_class = ItemFilter

    def get_queryset(self):
        return selectors.item_list(shop=self.shop)

    @extend_schema(request=ItemCreateSerializer, responses={201: ItemSerializer})
    def post(self, request, shop_id):
        serializer = ItemCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        item = services.item_create(shop=self.shop, user=request.user, **serializer.validated_data)
        return Response(ItemSerializer(item).data, status=status.HTTP_201_CREATED)


class ItemLowStockApi(ShopScopedMixin, generics.ListAPIView):
    serializer_class = ItemSerializer

    def get_queryset(self):
        return selectors.item_list_low_stock(shop=self.shop)


class ItemDetailApi(ShopScopedMixin, generics.RetrieveAPIView):
    serializer_class = ItemSerializer
    lookup_url_kwarg = "item_id"

    def get_queryset(self):
        return selectors.item_list(shop=self.shop)

    @extend_schema(request=ItemSerializer, responses=ItemSerializer)
    def patch(self, request, shop_id, item_id):
        item = self.get_object()
        serializer = ItemSerializer(item, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        item = services.item_update(item=item, **serializer.validated_data)
        return Response(ItemSerializer(item).data)

    def delete(self, request, shop_id, item_id):
        services.item_delete(item=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class ItemStockApi(ShopScopedMixin, generics.ListAPIView):
    """GET: the item's stock history, newest first. POST {change, reason, note}: move the stock."""

    serializer_class = StockHistorySerializer
    write_action = Action.STOCK

    def _item(self) -> Item:
        item = Item.objects.filter(shop=self.shop, pk=self.kwargs["item_id"]).first()
        if item is None:
            raise _not_found()
        return item

    def get_queryset(self):
        return selectors.stock_history_list(item=self._item())

    @extend_schema(
        request=StockChangeSerializer,
        responses={
            201: inline_serializer(
                "StockChangeOutput", {"item": ItemSerializer(), "history": StockHistorySerializer()}
            )
        },
    )
    def post(self, request, shop_id, item_id):
        serializer = StockChangeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        item, entry = services.stock_update(
            item=self._item(),
            change=data["change"],
            reason=data["reason"],
            note=data["note"],
            user=request.user,
        )
        return Response(
            {"item": ItemSerializer(item).data, "history": StockHistorySerializer(entry).data},
            status=status.HTTP_201_CREATED,
        )


# --- plain catalogue resources ----------------------------------------------------------------


class _ShopCrudList(ShopScopedMixin, generics.ListCreateAPIView):
    model = None

    def get_queryset(self):
        return self.model.objects.filter(shop=self.shop)

    def perform_create(self, serializer):
        serializer.save(shop=self.shop)


class _ShopCrudDetail(ShopScopedMixin, generics.RetrieveUpdateDestroyAPIView):
    model = None
    http_method_names = ["get", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return self.model.objects.filter(shop=self.shop)


class FormListCreateApi(_ShopCrudList):
    model, serializer_class = Form, FormSerializer

    def perform_create(self, serializer):
        serializer.instance = services.form_create(shop=self.shop, **serializer.validated_data)


class FormDetailApi(_ShopCrudDetail):
    model, serializer_class, lookup_url_kwarg = Form, FormSerializer, "form_id"

    def perform_update(self, serializer):
        serializer.instance = services.form_update(form=serializer.instance, **serializer.validated_data)


class PaymentMethodListCreateApi(_ShopCrudList):
    model, serializer_class = PaymentMethod, PaymentMethodSerializer


class PaymentMethodDetailApi(_ShopCrudDetail):
    model, serializer_class, lookup_url_kwarg = PaymentMethod, PaymentMethodSerializer, "payment_method_id"


class KeywordReplyListCreateApi(_ShopCrudList):
    model, serializer_class = KeywordReply, KeywordReplySerializer


class KeywordReplyDetailApi(_ShopCrudDetail):
    model, serializer_class, lookup_url_kwarg = KeywordReply, KeywordReplySerializer, "reply_id"


class SavedReplyListCreateApi(_ShopCrudList):
    model, serializer_class = SavedReply, SavedReplySerializer


class SavedReplyDetailApi(_ShopCrudDetail):
    model, serializer_class, lookup_url_kwarg = SavedReply, SavedReplySerializer, "reply_id"


class IntegrationListCreateApi(_ShopCrudList):
    model, serializer_class = SocialIntegration, IntegrationSerializer


class IntegrationDetailApi(_ShopCrudDetail):
    model, serializer_class, lookup_url_kwarg = SocialIntegration, IntegrationSerializer, "integration_id"


# --- orders -----------------------------------------------------------------------------------


class OrderListApi(ShopScopedMixin, generics.ListAPIView):
    serializer_class = OrderSerializer
    filterset_class = OrderFilter
    http_method_names = ["get", "head", "options"]

    def get_queryset(self):
        return selectors.order_list(shop=self.shop)


class OrderDetailApi(ShopScopedMixin, generics.RetrieveAPIView):
    """GET the order; PATCH {status} moves it along the transition table (cancel restocks)."""

    serializer_class = OrderSerializer
    lookup_url_kwarg = "order_id"
    write_action = Action.ORDERS
    http_method_names = ["get", "patch", "head", "options"]

    def get_queryset(self):
        return selectors.order_list(shop=self.shop)

    @extend_schema(request=OrderStatusSerializer, responses=OrderSerializer)
    @whole_body_patch
    def patch(self, request, shop_id, order_id):
        serializer = OrderStatusSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.order_transition(
            shop_id=self.shop.pk,
            order_id=order_id,
            to=serializer.validated_data["status"],
            user=request.user,
        )
        return Response(OrderSerializer(self.get_object()).data)


# --- chat -------------------------------------------------------------------------------------


class ConversationListApi(ShopScopedMixin, generics.ListAPIView):
    serializer_class = ConversationSerializer
    filterset_class = ConversationFilter
    http_method_names = ["get", "head", "options"]

    def get_queryset(self):
        return selectors.conversation_list(shop=self.shop)


class ConversationDetailApi(ShopScopedMixin, generics.RetrieveAPIView):
    serializer_class = ConversationSerializer
    lookup_url_kwarg = "conversation_id"
    write_action = Action.CHAT
    http_method_names = ["get", "patch", "head", "options"]

    def get_queryset(self):
        return selectors.conversation_list(shop=self.shop)

    @extend_schema(request=ConversationUpdateSerializer, responses=ConversationSerializer)
    def patch(self, request, shop_id, conversation_id):
        conversation = self.get_object()
        serializer = ConversationUpdateSerializer(conversation, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        serializer.save()
        return Response(ConversationSerializer(conversation).data)


class MessageListCreateApi(ShopScopedMixin, generics.ListAPIView):
    serializer_class = MessageSerializer
    write_action = Action.CHAT

    def _conversation(self) -> Conversation:
        conversation = Conversation.objects.filter(shop=self.shop, pk=self.kwargs["conversation_id"]).first()
        if conversation is None:
            raise _not_found()
        return conversation

    def get_queryset(self):
        return selectors.message_list(conversation=self._conversation())

    @extend_schema(request=MessageSendSerializer, responses={201: MessageSerializer})
    def post(self, request, shop_id, conversation_id):
        serializer = MessageSendSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        message = services.message_send(
            conversation=self._conversation(), user=request.user, **serializer.validated_data
        )
        return Response(MessageSerializer(message).data, status=status.HTTP_201_CREATED)


class InboundMessageApi(APIView):
    """For channel connectors: a shop member's JWT (role with chat) or a service API key with
    scope `shops:inbound`. Returns the stored message and the auto-reply (or null)."""

    authentication_classes = [JWTCookieOrHeaderAuthentication, ApiKeyAuthentication]
    permission_classes = [IsUserAccount | IsServiceKeyWithScope]
    required_scope = INBOUND_SCOPE

    def _shop(self, request, shop_id) -> Shop:
        if isinstance(request.auth, ServiceApiKey):
            # A key posts into the one shop it is bound to; any other shop is 404.
            if not inbound_key_may_post(api_key=request.auth, shop_id=shop_id):
                raise _not_found()
            return Shop.objects.get(pk=shop_id)
        membership = selectors.membership_get(user=request.user, shop_id=shop_id)
        if membership is None:
            raise _not_found()
        if not role_allows(membership.role, Action.CHAT):
            raise Forbidden(f"Your role ({membership.role}) may not do this.")
        return membership.shop

    @extend_schema(
        request=InboundSerializer,
        responses={
            201: inline_serializer(
                "InboundOutput",
                {"message": MessageSerializer(), "auto_reply": MessageSerializer(allow_null=True)},
            )
        },
    )
    def post(self, request, shop_id):
        shop = self._shop(request, shop_id)
        serializer = InboundSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        message, reply = services.conversation_receive_message(shop=shop, **serializer.validated_data)
        return Response(
            {
                "message": MessageSerializer(message).data,
                "auto_reply": MessageSerializer(reply).data if reply else None,
            },
            status=status.HTTP_201_CREATED,
        )


class _InboundKeyMixin:
    """A connector's calls: only a service API key with scope `shops:inbound` bound to the shop
    in the URL; any other shop is 404."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [IsServiceKeyWithScope]
    required_scope = INBOUND_SCOPE

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if not inbound_key_may_post(api_key=request.auth, shop_id=kwargs["shop_id"]):
            raise _not_found()


class OutboundFeedApi(_InboundKeyMixin, generics.ListAPIView):
    """For channel connectors: the shop's outbound messages still to deliver (staff, bot and ai
    messages of conversations that no channel integration delivers), oldest first. Page with
    `?cursor=` (empty for the first page, then `next`); acknowledge each delivered message. A
    message leaves the feed when acknowledged, so a connector that restarts from the first page
    sees exactly what is still undelivered."""

    serializer_class = OutboundMessageSerializer
    http_method_names = ["get", "head", "options"]
    queryset = OutboundMessageSerializer.Meta.model.objects.none()  # for the schema generator

    def get_queryset(self):
        return selectors.outbound_message_list(shop_id=self.kwargs["shop_id"])


class OutboundAckApi(_InboundKeyMixin, APIView):
    """For channel connectors: report one outbound message delivered (`sent`, with the channel's
    message id) or not (`failed`, with the error). Repeating an acknowledgement is harmless;
    changing it is 409 `already_acknowledged`. A message of another shop, or one a channel
    integration delivers, is 404."""

    @extend_schema(request=OutboundAckSerializer, responses=OutboundMessageSerializer)
    def post(self, request, shop_id, message_id):
        serializer = OutboundAckSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        message = services.message_acknowledge(
            shop_id=shop_id, message_id=message_id, **serializer.validated_data
        )
        return Response(OutboundMessageSerializer(message).data)


# --- chat channel webhooks --------------------------------------------------------------------


def _raw_body(request) -> tuple[bytes, bool]:
    # Signatures cover the exact bytes, so the body is read raw, never re-serialized.
    try:
        return request.body, False
    except RequestDataTooBig:
        return b"", True


class _ChannelWebhookApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "webhook"


WEBHOOK_RESPONSES = {
    200: webhook_ack("processed, ignored (no customer message) or duplicate"),
    400: OpenApiResponse(description="missing signature, malformed body"),
    401: OpenApiResponse(description="wrong signature"),
    404: OpenApiResponse(description="unknown integration"),
}


class LineWebhookApi(_ChannelWebhookApi):
    """LINE Messaging API webhook of one LINE integration (set it as the channel's Webhook URL).
    Verified by `X-Line-Signature` (base64 HMAC-SHA256 of the body with the channel secret);
    message events become customer messages, keyword auto-replies go back through LINE."""

    @extend_schema(
        request={"application/json": OpenApiTypes.OBJECT},
        parameters=[
            OpenApiParameter(
                "X-Line-Signature",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                required=True,
                description="base64(HMAC-SHA256(channel secret, raw body))",
            )
        ],
        responses=WEBHOOK_RESPONSES,
    )
    def post(self, request, integration_id):
        headers = {k.lower(): v for k, v in request.headers.items()}
        body, too_large = _raw_body(request)
        result = channel_webhooks.line_webhook_receive(
            integration_id=integration_id, body=body, headers=headers, body_too_large=too_large
        )
        return webhook_response(result)


class MessengerWebhookApi(_ChannelWebhookApi):
    """Messenger webhook of one Facebook page integration (the app's Callback URL). GET is Meta's
    subscription handshake; POST carries the page's events, verified by `X-Hub-Signature-256`
    (sha256=hex HMAC-SHA256 of the body with the app secret)."""

    @extend_schema(
        parameters=[
            OpenApiParameter("hub.mode", OpenApiTypes.STR, OpenApiParameter.QUERY, required=True),
            OpenApiParameter("hub.verify_token", OpenApiTypes.STR, OpenApiParameter.QUERY, required=True),
            OpenApiParameter("hub.challenge", OpenApiTypes.STR, OpenApiParameter.QUERY, required=True),
        ],
        responses={
            (200, "text/plain"): OpenApiResponse(OpenApiTypes.STR, description="hub.challenge, echoed"),
            403: OpenApiResponse(description="wrong verify token"),
            404: OpenApiResponse(description="unknown integration"),
        },
    )
    def get(self, request, integration_id):
        headers = {k.lower(): v for k, v in request.headers.items()}
        status_code, challenge = channel_webhooks.messenger_subscription_verify(
            integration_id=integration_id, params=request.query_params, headers=headers
        )
        if status_code == 200:
            return HttpResponse(challenge, content_type="text/plain")
        if status_code == 404:
            return Response(error_body("not_found", "Not found."), status=404)
        return Response(error_body("invalid_verify_token", "The verify token does not match."), status=403)

    @extend_schema(
        request={"application/json": OpenApiTypes.OBJECT},
        parameters=[
            OpenApiParameter(
                "X-Hub-Signature-256",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                required=True,
                description="sha256=<hex HMAC-SHA256(app secret, raw body)>",
            )
        ],
        responses=WEBHOOK_RESPONSES,
    )
    def post(self, request, integration_id):
        headers = {k.lower(): v for k, v in request.headers.items()}
        body, too_large = _raw_body(request)
        result = channel_webhooks.messenger_webhook_receive(
            integration_id=integration_id, body=body, headers=headers, body_too_large=too_large
        )
        return webhook_response(result)


# --- public order form ------------------------------------------------------------------------


class _PublicFormMixin:
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "public_form"

    def _form(self, slug: str) -> Form:
        form = selectors.form_get_public(slug=slug)
        if form is None:
            raise _not_found()
        return form


class PublicFormApi(_PublicFormMixin, APIView):
    @extend_schema(
        responses=inline_serializer(
            "PublicForm",
            {
                "slug": serializers.CharField(),
                "name": serializers.CharField(),
                "description": serializers.CharField(),
                "shop": serializers.DictField(),
                "fields": serializers.ListField(),
                "items": PublicItemSerializer(many=True),
                "payment_methods": PublicPaymentMethodSerializer(many=True),
            },
        )
    )
    def get(self, request, slug):
        form = self._form(slug)
        items = selectors.form_public_items(form=form)[:500]
        methods = PaymentMethod.objects.filter(shop_id=form.shop_id, is_active=True).order_by("name", "id")
        return Response(
            {
                "slug": form.slug,
                "name": form.name,
                "description": form.description,
                "shop": {"name": form.shop.name, "currency": form.shop.currency},
                "fields": form.fields,
                "items": PublicItemSerializer(items, many=True).data,
                "payment_methods": PublicPaymentMethodSerializer(methods, many=True).data,
            }
        )


class PublicFormSubmitApi(_PublicFormMixin, APIView):
    @extend_schema(request=OrderSubmitSerializer, responses={201: PublicOrderSerializer})
    @idempotent
    def post(self, request, slug):
        form = self._form(slug)
        serializer = OrderSubmitSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        order = services.order_submit(form=form, **serializer.validated_data)
        return Response(PublicOrderSerializer(order).data, status=status.HTTP_201_CREATED)
