from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from config.exceptions import ApplicationError
from shops.models import Shop
from shops.services.inbound_keys import inbound_key_create


class Command(BaseCommand):
    help = (
        "Create a service API key with scope shops:inbound bound to one shop, and print it "
        "once (only its hash is stored). The key may post into that shop's conversations only."
    )

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument("--shop", required=True, help="The shop's id (UUID) or slug.")

    def handle(self, *args, name, shop, **options):
        found = Shop.objects.filter(slug=shop).first()
        if found is None:
            try:
                found = Shop.objects.filter(pk=shop).first()
            except ValidationError as exc:  # neither a slug nor a UUID
                raise CommandError(f"No shop {shop!r}.") from exc
        if found is None:
            raise CommandError(f"No shop {shop!r}.")
        try:
            api_key, key = inbound_key_create(shop=found, name=name)
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"Created API key {api_key.prefix}… ({api_key.name}) for shop {found.slug}")
        self.stdout.write("Key (shown once, store it now):")
        self.stdout.write(key)
