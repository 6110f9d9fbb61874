from analytics.services.errors import error_log_record
from analytics.services.metrics import (
    metrics_backfill,
    metrics_generate_daily,
    metrics_generate_platform,
    metrics_generate_shops,
    metrics_verify,
)

__all__ = [
    "error_log_record",
    "metrics_backfill",
    "metrics_generate_daily",
    "metrics_generate_platform",
    "metrics_generate_shops",
    "metrics_verify",
]
