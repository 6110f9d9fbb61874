from datetime import timedelta

from analytics import services
from config.commands import BaseCommand, UsageError, iso_date, uuid_arg
from shops.models import Shop

CHUNK_DAYS = 31  # one transaction per month of days: progress shows, and a failure loses little


class Command(BaseCommand):
    help = (
        "Backfill analytics for [--from, --to] (inclusive): shop metrics by each shop's local day "
        "(every shop, or --shop ID), and with --platform the platform's UTC days. Idempotent."
    )

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="date_from", required=True, type=iso_date)
        parser.add_argument("--to", dest="date_to", required=True, type=iso_date)
        parser.add_argument("--shop", dest="shop_id", type=uuid_arg, help="only this shop (its UUID)")
        parser.add_argument(
            "--platform", action="store_true", help="also (or, with --shop, only) platform rows"
        )

    def handle(self, *args, date_from, date_to, shop_id, platform, **options):
        if date_from > date_to:
            raise UsageError("--from must not be after --to.")
        shop_ids = None
        if shop_id:
            if not Shop.objects.filter(pk=shop_id).exists():
                raise UsageError(f"No shop {shop_id}.")
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
