from django.core.management.base import BaseCommand, CommandError

from backups import services
from shops.models import Shop


class Command(BaseCommand):
    help = "Take a recovery snapshot of one shop's catalogue."

    def add_arguments(self, parser):
        parser.add_argument("--shop", required=True, help="shop id")
        parser.add_argument("--note", default="")

    def handle(self, *args, shop, note, **options):
        try:
            obj = Shop.objects.get(pk=shop)
        except Exception as exc:
            raise CommandError(f"No shop {shop!r}.") from exc
        snapshot = services.snapshot_create(shop=obj, note=note)
        self.stdout.write(
            self.style.SUCCESS(f"snapshot {snapshot.pk}: {snapshot.size} bytes, sha256 {snapshot.sha256}")
        )
