from django.urls import path

from shops import apis

S = "shops/<uuid:shop_id>"

urlpatterns = [
    path("shops", apis.ShopListCreateApi.as_view(), name="shops"),
    path(f"{S}", apis.ShopDetailApi.as_view(), name="shop-detail"),
    path(f"{S}/plan", apis.ShopPlanPurchaseApi.as_view(), name="shop-plan"),
    path(f"{S}/plan/cancel", apis.ShopPlanCancelApi.as_view(), name="shop-plan-cancel"),
    path("shop-plans", apis.ShopPlanListApi.as_view(), name="shop-plans"),
    path(f"{S}/members", apis.MemberListCreateApi.as_view(), name="shop-members"),
    path("invitations/<str:token>/accept", apis.InvitationAcceptApi.as_view(), name="invitation-accept"),
    path(f"{S}/members/<uuid:member_id>", apis.MemberDetailApi.as_view(), name="shop-member-detail"),
    path(f"{S}/items", apis.ItemListCreateApi.as_view(), name="shop-items"),
    path(f"{S}/items/low-stock", apis.ItemLowStockApi.as_view(), name="shop-items-low-stock"),
    path(f"{S}/items/<uuid:item_id>", apis.ItemDetailApi.as_view(), name="shop-item-detail"),
    path(f"{S}/items/<uuid:item_id>/stock", apis.ItemStockApi.as_view(), name="shop-item-stock"),
    path(f"{S}/forms", apis.FormListCreateApi.as_view(), name="shop-forms"),
    path(f"{S}/forms/<uuid:form_id>", apis.FormDetailApi.as_view(), name="shop-form-detail"),
    path(f"{S}/orders", apis.OrderListApi.as_view(), name="shop-orders"),
    path(f"{S}/orders/<uuid:order_id>", apis.OrderDetailApi.as_view(), name="shop-order-detail"),
    path(f"{S}/payment-methods", apis.PaymentMethodListCreateApi.as_view(), name="shop-payment-methods"),
    path(
        f"{S}/payment-methods/<uuid:payment_method_id>",
        apis.PaymentMethodDetailApi.as_view(),
        name="shop-payment-method-detail",
    ),
    path(f"{S}/conversations", apis.ConversationListApi.as_view(), name="shop-conversations"),
    path(f"{S}/conversations/inbound", apis.InboundMessageApi.as_view(), name="shop-conversations-inbound"),
    path(
        f"{S}/conversations/<uuid:conversation_id>",
        apis.ConversationDetailApi.as_view(),
        name="shop-conversation-detail",
    ),
    path(
        f"{S}/conversations/<uuid:conversation_id>/messages",
        apis.MessageListCreateApi.as_view(),
        name="shop-conversation-messages",
    ),
    path(f"{S}/keyword-replies", apis.KeywordReplyListCreateApi.as_view(), name="shop-keyword-replies"),
    path(
        f"{S}/keyword-replies/<uuid:reply_id>",
        apis.KeywordReplyDetailApi.as_view(),
        name="shop-keyword-reply-detail",
    ),
    path(f"{S}/saved-replies", apis.SavedReplyListCreateApi.as_view(), name="shop-saved-replies"),
    path(
        f"{S}/saved-replies/<uuid:reply_id>",
        apis.SavedReplyDetailApi.as_view(),
        name="shop-saved-reply-detail",
    ),
    path(f"{S}/integrations", apis.IntegrationListCreateApi.as_view(), name="shop-integrations"),
    path(
        f"{S}/integrations/<uuid:integration_id>",
        apis.IntegrationDetailApi.as_view(),
        name="shop-integration-detail",
    ),
    path(f"{S}/outbound", apis.OutboundFeedApi.as_view(), name="shop-outbound"),
    path(f"{S}/outbound/<uuid:message_id>/ack", apis.OutboundAckApi.as_view(), name="shop-outbound-ack"),
    path("channels/line/<uuid:integration_id>", apis.LineWebhookApi.as_view(), name="channel-line-webhook"),
    path(
        "channels/facebook/<uuid:integration_id>",
        apis.MessengerWebhookApi.as_view(),
        name="channel-facebook-webhook",
    ),
    path("public/forms/<slug:slug>", apis.PublicFormApi.as_view(), name="public-form"),
    path("public/forms/<slug:slug>/submit", apis.PublicFormSubmitApi.as_view(), name="public-form-submit"),
]
