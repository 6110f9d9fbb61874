from django.urls import path

from console.metrics import metrics_view

urlpatterns = [
    path("metrics", metrics_view, name="metrics"),
]
