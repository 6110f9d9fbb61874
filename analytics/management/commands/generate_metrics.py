from datetime import date, timedelta

from django.core.management.base import BaseCommand, CommandError

from analytics import services
from shops.models import Shop

CHUNK_DAYS = 31  # one transaction per month of days: progress shows, and a failure loses little


def parse_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"{value!r} is not a date (YYYY-MM-DD).") from exc


class Command(BaseCommand):
    help = (
        "Backfill analytics for [--from, --to] (inclusive): shop metrics by each shop's local day "
        "(every shop, or --shop ID), and with --platform the platform's UTC days. Idempotent."
    )

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="date_from", required=True, type=parse_date)
        parser.add_argument("--to", dest="date_to", required=True, type=parse_date)
        parser.add_argument("--shop", dest="shop_id", help="only this shop (its UUID)")
        parser.add_argument(
            "--platform", action="store_true", help="also (or, with --shop, only) platform rows"
        )

    def handle(self, *args, date_from, date_to, shop_id, platform, **options):
        if date_from > date_to:
            raise CommandError("--from must not be after --to.")
        shop_ids = None
        if shop_id:
            if not _is_uuid(shop_id) or not Shop.objects.filter(pk=shop_id).exists():
                raise CommandError(f"No shop {shop_id}.")
            shop_ids = [shop_id]
        chunks = []
        start = date_from
        while start <= date_to:
            end = min(start + timedelta(days=CHUNK_DAYS - 1), date_to)
            chunks.append((start, end))
            start = end + timedelta(days=1)
        totals: dict[str, int] = {}
        for index, (start, end) in enumerate(chunks, 1):
            counts = services.metrics_generate_shops(shop_ids=shop_ids, date_from=start, date_to=end)
            if platform:
                counts.update(services.metrics_generate_platform(date_from=start, date_to=end))
            for key, value in counts.items():
                totals[key] = totals.get(key, 0) + value
            bar = "#" * (20 * index // len(chunks))
            self.stdout.write(f"\r[{bar:<20}] {index}/{len(chunks)} {start}..{end}", ending="")
            self.stdout.flush()
        self.stdout.write("")
        self.stdout.write(
            self.style.SUCCESS("rows written: " + ", ".join(f"{k} {v}" for k, v in sorted(totals.items())))
        )


def _is_uuid(value: str) -> bool:
    from uuid import UUID

    try:
        UUID(value)
    except ValueError:
        return False
    return True
