from uuid import UUID

from accounts.models import ServiceApiKey
from config.commands import BaseCommand, UsageError, refused, text
from config.exceptions import ApplicationError
from shops.models import Shop
from shops.services.inbound_keys import inbound_key_create


def _shop(reference: str) -> Shop | None:
    """The shop with this slug, else with this id."""
    found = Shop.objects.filter(slug=reference).first()
    if found is not None:
        return found
    try:
        pk = UUID(reference)
    except ValueError:
        return None
    return Shop.objects.filter(pk=pk).first()


class Command(BaseCommand):
    help = (
        "Create a service API key with scope shops:inbound bound to one shop, and print it "
        "once (only its hash is stored). The key may post into that shop's conversations only."
    )

    def add_arguments(self, parser):
        name_length = ServiceApiKey._meta.get_field("name").max_length
        parser.add_argument("--name", required=True, type=text(max_length=name_length))
        parser.add_argument("--shop", required=True, help="The shop's id (UUID) or slug.")

    def handle(self, *args, name, shop, **options):
        found = _shop(shop)
        if found is None:
            raise UsageError(f"No shop {shop!r}.")
        try:
            api_key, key = inbound_key_create(shop=found, name=name)
        except ApplicationError as exc:
            raise refused(exc) from None
        self.stdout.write(f"Created API key {api_key.prefix}… ({api_key.name}) for shop {found.slug}")
        self.stdout.write("Key (shown once, store it now):")
        self.stdout.write(key)
