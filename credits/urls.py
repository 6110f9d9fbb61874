from django.urls import path

from credits import apis

# Declared without trailing slashes: config.middleware strips one, so both forms answer.
urlpatterns = [
    path("credits/packages", apis.PackageListApi.as_view(), name="credits-packages"),
    path("credits/balance", apis.BalanceApi.as_view(), name="credits-balance"),
    path("credits/transactions", apis.TransactionListApi.as_view(), name="credits-transactions"),
    path(
        "credits/transactions/<uuid:transaction_id>",
        apis.TransactionDetailApi.as_view(),
        name="credits-transaction-detail",
    ),
    path("credits/purchases", apis.PurchaseApi.as_view(), name="credits-purchases"),
    path("credits/payments", apis.PaymentListApi.as_view(), name="credits-payments"),
    path(
        "credits/payments/<uuid:payment_id>", apis.PaymentDetailApi.as_view(), name="credits-payment-detail"
    ),
    path("payments/<uuid:payment_id>/receipt", apis.PaymentReceiptApi.as_view(), name="payment-receipt"),
    path("subscriptions/plans", apis.PlanListApi.as_view(), name="subscription-plans"),
    path("subscriptions", apis.SubscriptionPurchaseApi.as_view(), name="subscriptions"),
    path("subscriptions/current", apis.SubscriptionCurrentApi.as_view(), name="subscription-current"),
    path(
        "subscriptions/current/cancel",
        apis.SubscriptionCancelApi.as_view(),
        name="subscription-current-cancel",
    ),
    path(
        "webhooks/payments/<str:provider>", apis.PaymentWebhookApi.as_view(), name="credits-payment-webhook"
    ),
]
