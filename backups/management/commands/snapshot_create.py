from backups import services
from backups.models import RecoverySnapshot
from config.commands import BaseCommand, UsageError, text, uuid_arg
from shops.models import Shop


class Command(BaseCommand):
    help = "Take a recovery snapshot of one shop's catalogue."

    def add_arguments(self, parser):
        parser.add_argument("--shop", required=True, type=uuid_arg, help="shop id")
        note_length = RecoverySnapshot._meta.get_field("note").max_length
        parser.add_argument("--note", default="", type=text(max_length=note_length, allow_blank=True))

    def handle(self, *args, shop, note, **options):
        obj = Shop.objects.filter(pk=shop).first()
        if obj is None:
            raise UsageError(f"No shop {shop}.")
        snapshot = services.snapshot_create(shop=obj, note=note)
        self.stdout.write(
            self.style.SUCCESS(f"snapshot {snapshot.pk}: {snapshot.size} bytes, sha256 {snapshot.sha256}")
        )
