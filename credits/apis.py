"""HTTP endpoints of credits. Each validates input, calls one selector or service, serializes."""

from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import services as account_services
from accounts.permissions import IsUserAccount
from accounts.serializers import SubscriptionSerializer
from config.exceptions import ApplicationError
from config.idempotency import idempotent
from config.openapi import provider_signature_headers, signature_header, webhook_ack
from config.throttling import ScopedRateThrottle
from credits import selectors, services
from credits.filters import PaymentFilter, TransactionFilter
from credits.serializers import (
    BalanceSerializer,
    PackageSerializer,
    PaymentDetailSerializer,
    PaymentSerializer,
    PaymentWebhookEventSerializer,
    PlanSerializer,
    PurchaseInputSerializer,
    SubscriptionPurchaseInputSerializer,
    TransactionSerializer,
)
from credits.services.receipts import receipt_pdf
from credits.services.subscriptions import subscription_purchase_start
from credits.webhook_receiver import webhook_response

USER_PERMISSIONS = [IsAuthenticated, IsUserAccount]


class PackageListApi(generics.ListAPIView):
    """Active credit packages with their price per credit. Public."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    serializer_class = PackageSerializer

    def get_queryset(self):
        return selectors.package_list()


class BalanceApi(APIView):
    permission_classes = USER_PERMISSIONS

    @extend_schema(responses=BalanceSerializer)
    def get(self, request: Request):
        return Response(BalanceSerializer(selectors.balance_summary(user=request.user)).data)


class TransactionListApi(generics.ListAPIView):
    """The caller's ledger, newest first; filters `type`, `from`, `to` (inclusive UTC days)."""

    permission_classes = USER_PERMISSIONS
    serializer_class = TransactionSerializer
    filterset_class = TransactionFilter

    def get_queryset(self):
        return selectors.transaction_list(user=self.request.user)


class TransactionDetailApi(APIView):
    permission_classes = USER_PERMISSIONS

    @extend_schema(responses=TransactionSerializer)
    def get(self, request: Request, transaction_id):
        row = selectors.transaction_get(user=request.user, transaction_id=transaction_id)
        return Response(TransactionSerializer(row).data)


class PaymentListApi(generics.ListAPIView):
    permission_classes = USER_PERMISSIONS
    serializer_class = PaymentSerializer
    filterset_class = PaymentFilter

    def get_queryset(self):
        return selectors.payment_list(user=self.request.user)


class PaymentDetailApi(APIView):
    permission_classes = USER_PERMISSIONS

    @extend_schema(responses=PaymentDetailSerializer)
    def get(self, request: Request, payment_id):
        payment = selectors.payment_get(user=request.user, payment_id=payment_id, with_refunds=True)
        return Response(PaymentDetailSerializer(payment).data)


class PaymentReceiptApi(APIView):
    """The receipt / tax invoice of one of the caller's completed payments, as a PDF (numbered
    `INV-<year>-<6 digits>`, gap-free per year; THB shows the VAT included). Another user's
    payment, or one without a receipt yet, is 404."""

    permission_classes = USER_PERMISSIONS

    @extend_schema(
        summary="Download a payment's receipt / tax invoice (PDF)",
        responses={
            (200, "application/pdf"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The receipt as a PDF."
            ),
            401: OpenApiResponse(description="Not authenticated."),
            404: OpenApiResponse(description="No such payment of yours, or no receipt yet."),
        },
    )
    def get(self, request: Request, payment_id):
        receipt = selectors.receipt_get(user=request.user, payment_id=payment_id)
        response = HttpResponse(receipt_pdf(receipt=receipt), content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="{receipt.number}.pdf"'
        return response


class PurchaseApi(APIView):
    """Start buying a package → the payment (`pending`, with the provider's checkout payload).

    A free package completes at once and can be claimed once (409 `free_package_already_claimed`).
    """

    permission_classes = USER_PERMISSIONS

    @extend_schema(request=PurchaseInputSerializer, responses={201: PaymentSerializer})
    @idempotent
    def post(self, request: Request):
        serializer = PurchaseInputSerializer(data=_json_object(request))
        serializer.is_valid(raise_exception=True)
        package = selectors.package_get(package_id=serializer.validated_data["package_id"])
        if package is None:
            raise ApplicationError(
                "Invalid input.", code="validation_error", fields={"package_id": ["No such package."]}
            )
        payment = services.purchase_start(
            user=request.user, package=package, provider=serializer.validated_data.get("provider")
        )
        return Response(PaymentSerializer(payment).data, status=status.HTTP_201_CREATED)


def _json_object(request: Request) -> dict:
    if not isinstance(request.data, dict):
        raise ApplicationError(
            "Invalid input.",
            code="validation_error",
            fields={"non_field_errors": ["Expected a JSON object."]},
        )
    return request.data


class PlanListApi(generics.ListAPIView):
    """Subscription plans on sale. Public."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    serializer_class = PlanSerializer

    def get_queryset(self):
        return selectors.plan_list()


class SubscriptionPurchaseApi(APIView):
    """Buy a plan → a `pending` payment with the provider's checkout; the provider's webhook
    activates the subscription. 409 `already_subscribed` while an auto-renewing subscription is
    active; 400 `provider_unavailable` for a provider without keys here."""

    permission_classes = USER_PERMISSIONS

    @extend_schema(request=SubscriptionPurchaseInputSerializer, responses={201: PaymentSerializer})
    @idempotent
    def post(self, request: Request):
        serializer = SubscriptionPurchaseInputSerializer(data=_json_object(request))
        serializer.is_valid(raise_exception=True)
        plan = selectors.plan_get(code=serializer.validated_data["plan"])
        if plan is None:
            raise ApplicationError(
                "Invalid input.", code="validation_error", fields={"plan": ["No such plan."]}
            )
        payment = subscription_purchase_start(
            user=request.user, plan=plan, provider=serializer.validated_data["provider"]
        )
        return Response(PaymentSerializer(payment).data, status=status.HTTP_201_CREATED)


class SubscriptionCurrentApi(APIView):
    """The caller's live (`active` or `past_due`) subscription; 404 when there is none."""

    permission_classes = USER_PERMISSIONS

    @extend_schema(responses=SubscriptionSerializer)
    def get(self, request: Request):
        return Response(SubscriptionSerializer(selectors.subscription_current(user=request.user)).data)


class SubscriptionCancelApi(APIView):
    """Cancel at period end: no more renewals, the tier stays until `end_date`. Idempotent."""

    permission_classes = USER_PERMISSIONS

    @extend_schema(request=None, responses=SubscriptionSerializer)
    def post(self, request: Request):
        sub = account_services.subscription_cancel(user=request.user)
        return Response(SubscriptionSerializer(sub).data)


class PaymentWebhookApi(APIView):
    """Signed provider notifications. Authenticated by the signature, not a user."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "webhook"

    @extend_schema(
        summary="Receive a signed payment provider event",
        request=PaymentWebhookEventSerializer,
        parameters=[
            signature_header(required=False, providers="every provider without a scheme of its own"),
            *provider_signature_headers(),
        ],
        responses={200: webhook_ack("processed, duplicate or ignored")},
    )
    def post(self, request: Request, provider: str):
        # The signature covers the exact bytes, so the body is read raw, never re-serialized.
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            body, too_large = request.body, False
        except RequestDataTooBig:
            body, too_large = b"", True
        result = services.payment_webhook_receive(
            provider=provider, body=body, headers=headers, body_too_large=too_large
        )
        return webhook_response(result)
