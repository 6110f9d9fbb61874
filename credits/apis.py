"""HTTP endpoints of SPEC §4. Each validates input, calls one selector or service, serializes."""

from django.core.exceptions import RequestDataTooBig
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsUserAccount
from config.exceptions import ApplicationError
from config.throttling import ScopedRateThrottle
from config.webhooks import webhook_response
from credits import selectors, services
from credits.filters import PaymentFilter, TransactionFilter
from credits.serializers import (
    BalanceSerializer,
    PackageSerializer,
    PaymentSerializer,
    PurchaseInputSerializer,
    TransactionSerializer,
)

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

    @extend_schema(responses=PaymentSerializer)
    def get(self, request: Request, payment_id):
        payment = selectors.payment_get(user=request.user, payment_id=payment_id)
        return Response(PaymentSerializer(payment).data)


class PurchaseApi(APIView):
    """Start buying a package → the payment (`pending`, with the provider's checkout payload).

    A free package completes at once and can be claimed once (409 `free_package_already_claimed`).
    """

    permission_classes = USER_PERMISSIONS

    @extend_schema(request=PurchaseInputSerializer, responses={201: PaymentSerializer})
    def post(self, request: Request):
        data = request.data
        if not isinstance(data, dict):
            raise ApplicationError(
                "Invalid input.",
                code="validation_error",
                fields={"non_field_errors": ["Expected a JSON object."]},
            )
        serializer = PurchaseInputSerializer(data=data)
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


class PaymentWebhookApi(APIView):
    """Signed provider notifications (SPEC §4). Authenticated by the signature, not a user."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "webhook"

    @extend_schema(
        request=None, responses={200: OpenApiResponse(description="processed, duplicate or ignored")}
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
