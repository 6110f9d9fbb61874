"""Service API keys for channel connectors, each bound to one shop."""

from django.db import transaction

from accounts.models import ServiceApiKey
from accounts.services import api_key_create
from shops.models import InboundApiKey, Shop

INBOUND_SCOPE = "shops:inbound"


@transaction.atomic
def inbound_key_create(*, shop: Shop, name: str) -> tuple[ServiceApiKey, str]:
    """Create a `shops:inbound` key that may post into `shop` only. Returns (key row, plain
    key); the plain key is shown once and never stored. Raises ApplicationError for a blank name."""
    api_key, key = api_key_create(name=name, scopes=[INBOUND_SCOPE])
    InboundApiKey.objects.create(api_key=api_key, shop=shop)
    return api_key, key


@transaction.atomic
def inbound_key_bind(*, api_key: ServiceApiKey, shop: Shop) -> InboundApiKey:
    """Bind (or re-bind) an existing key to `shop`. Locks nothing beyond the binding row's upsert."""
    binding, _ = InboundApiKey.objects.update_or_create(api_key=api_key, defaults={"shop": shop})
    return binding


def inbound_key_may_post(*, api_key: ServiceApiKey, shop_id) -> bool:
    """True when `api_key` has the inbound scope and is bound to `shop_id`."""
    return (
        api_key.has_scope(INBOUND_SCOPE)
        and InboundApiKey.objects.filter(api_key=api_key, shop_id=shop_id).exists()
    )
