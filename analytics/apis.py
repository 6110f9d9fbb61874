"""The analytics API. Shop endpoints: members of the shop, viewer and up (others 404,
through the shops app's ShopScopedMixin). Platform endpoints: staff (others 403, as the other
staff endpoint, `GET /api/jobs/queue`). Every response needs a fixed number of queries."""

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics import selectors, services
from analytics.serializers import (
    CategoryRowSerializer,
    DateRangeInputSerializer,
    ErrorInputSerializer,
    ErrorOutputSerializer,
    PlatformMetricSerializer,
    ProductRowSerializer,
    ProductsInputSerializer,
    SalesInputSerializer,
    SalesOutputSerializer,
    ShopSummarySerializer,
)
from config.replicas import reads_from_replica
from config.throttling import ScopedRateThrottle
from shops.apis import ShopScopedMixin

RANGE = [
    OpenApiParameter("from", str, description="YYYY-MM-DD, inclusive"),
    OpenApiParameter("to", str, description="YYYY-MM-DD, inclusive"),
]
GET_ONLY = ["get", "head", "options"]


def _validated(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class ShopSalesApi(ShopScopedMixin, APIView):
    http_method_names = GET_ONLY

    @extend_schema(
        parameters=[*RANGE, OpenApiParameter("interval", str, enum=["day", "week", "month"])],
        responses=SalesOutputSerializer,
    )
    @reads_from_replica
    def get(self, request, shop_id):
        args = _validated(SalesInputSerializer, request.query_params)
        # Built and formatted in SQL, not by SalesOutputSerializer (which documents the shape): a
        # year of days is 365 rows and DRF's per-field serialization dominated the response time.
        return Response(selectors.sales_series(shop=self.shop, **args))


class ShopProductsApi(ShopScopedMixin, APIView):
    http_method_names = GET_ONLY

    @extend_schema(
        parameters=[
            *RANGE,
            OpenApiParameter("order_by", str, enum=sorted(selectors.PRODUCT_ORDERING)),
            OpenApiParameter("limit", int),
        ],
        responses=inline_serializer("ProductAnalyticsList", {"results": ProductRowSerializer(many=True)}),
    )
    @reads_from_replica
    def get(self, request, shop_id):
        args = _validated(ProductsInputSerializer, request.query_params)
        rows = selectors.product_ranking(shop=self.shop, **args)
        return Response({"results": ProductRowSerializer(rows, many=True).data})


class ShopCategoriesApi(ShopScopedMixin, APIView):
    http_method_names = GET_ONLY

    @extend_schema(
        parameters=RANGE,
        responses=inline_serializer("CategoryAnalyticsList", {"results": CategoryRowSerializer(many=True)}),
    )
    @reads_from_replica
    def get(self, request, shop_id):
        args = _validated(DateRangeInputSerializer, request.query_params)
        rows = selectors.category_breakdown(shop=self.shop, **args)
        return Response({"results": CategoryRowSerializer(rows, many=True).data})


def _money(value) -> str:
    return f"{value:.2f}"


class ShopSummaryApi(ShopScopedMixin, APIView):
    http_method_names = GET_ONLY

    @extend_schema(responses=ShopSummarySerializer)
    @reads_from_replica
    def get(self, request, shop_id):
        data = selectors.shop_summary(shop=self.shop)
        for key in ("today", "yesterday", "last_7_days", "last_30_days"):
            data[key] = {k: _money(v) if "revenue" in k else v for k, v in data[key].items()}
        data["top_products"] = [{**p, "revenue": _money(p["revenue"])} for p in data["top_products"]]
        return Response(data)


class PlatformMetricsApi(APIView):
    permission_classes = [IsAdminUser]
    http_method_names = GET_ONLY

    @extend_schema(
        parameters=RANGE,
        responses=inline_serializer("PlatformMetricList", {"results": PlatformMetricSerializer(many=True)}),
    )
    @reads_from_replica
    def get(self, request):
        args = _validated(DateRangeInputSerializer, request.query_params)
        rows = selectors.platform_metric_list(**args)
        return Response({"results": PlatformMetricSerializer(rows, many=True).data})


class PlatformSummaryApi(APIView):
    permission_classes = [IsAdminUser]
    http_method_names = GET_ONLY

    @extend_schema(responses=inline_serializer("PlatformSummary", {"as_of": serializers.DateField()}))
    @reads_from_replica
    def get(self, request):
        data = selectors.platform_summary()
        latest = data.pop("latest")
        data["latest"] = PlatformMetricSerializer(latest).data if latest is not None else None
        data["last_30_days"]["credit_revenue"] = _money(data["last_30_days"]["credit_revenue"])
        return Response(data)


class ErrorReportApi(APIView):
    """POST: a client (logged in or not) reports an error; grouped by fingerprint."""

    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "client_errors"
    http_method_names = ["post", "options"]

    @extend_schema(request=ErrorInputSerializer, responses={201: ErrorOutputSerializer})
    def post(self, request):
        data = _validated(ErrorInputSerializer, request.data)
        user = request.user if request.user and request.user.is_authenticated else None
        if user is not None and not hasattr(user, "email"):
            user = None  # a service key's pseudo-user is not a person
        log = services.error_log_record(**data, user=user)
        return Response(ErrorOutputSerializer(log).data, status=status.HTTP_201_CREATED)
