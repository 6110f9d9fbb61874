from django.urls import path

from analytics import apis

S = "shops/<uuid:shop_id>/analytics"

urlpatterns = [
    path(f"{S}/sales", apis.ShopSalesApi.as_view(), name="shop-analytics-sales"),
    path(f"{S}/products", apis.ShopProductsApi.as_view(), name="shop-analytics-products"),
    path(f"{S}/categories", apis.ShopCategoriesApi.as_view(), name="shop-analytics-categories"),
    path(f"{S}/summary", apis.ShopSummaryApi.as_view(), name="shop-analytics-summary"),
    path("platform/metrics", apis.PlatformMetricsApi.as_view(), name="platform-metrics"),
    path("platform/summary", apis.PlatformSummaryApi.as_view(), name="platform-summary"),
    path("errors", apis.ErrorReportApi.as_view(), name="errors"),
]
