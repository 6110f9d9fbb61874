"""A `shops:inbound` service key posts into the one shop it is bound to (issue 9)."""

import io

import pytest
from django.core.management import CommandError, call_command

from accounts.models import ServiceApiKey
from accounts.services import api_key_create
from shops.models import InboundApiKey, Message
from shops.services.inbound_keys import inbound_key_bind, inbound_key_create
from tests.conftest import assert_error
from tests.shops.factories import make_shop

pytestmark = pytest.mark.django_db

BODY = {"channel": "line", "customer_handle": "U9", "text": "hi"}


def _inbound(shop) -> str:
    return f"/api/shops/{shop.pk}/conversations/inbound"


def test_a_bound_key_posts_into_its_shop(api_client):
    shop = make_shop()
    _, key = inbound_key_create(shop=shop, name="line")

    response = api_client.post(_inbound(shop), BODY, format="json", HTTP_AUTHORIZATION=f"Api-Key {key}")

    assert response.status_code == 201, response.content
    assert Message.objects.filter(conversation__shop=shop).count() == 1


def test_a_bound_key_gets_404_on_another_shop_and_writes_nothing(api_client):
    mine, other = make_shop(), make_shop()
    _, key = inbound_key_create(shop=mine, name="line")

    response = api_client.post(_inbound(other), BODY, format="json", HTTP_AUTHORIZATION=f"Api-Key {key}")

    assert_error(response, 404, "not_found")
    assert Message.objects.filter(conversation__shop=other).count() == 0


def test_an_unbound_inbound_key_posts_nowhere(api_client):
    shop = make_shop()
    _, key = api_key_create(name="loose", scopes=["shops:inbound"])

    assert_error(
        api_client.post(_inbound(shop), BODY, format="json", HTTP_AUTHORIZATION=f"Api-Key {key}"), 404
    )
    assert not Message.objects.exists()


def test_rebinding_moves_the_key_to_the_new_shop(api_client):
    first, second = make_shop(), make_shop()
    api_key, key = inbound_key_create(shop=first, name="line")

    inbound_key_bind(api_key=api_key, shop=second)

    auth = {"HTTP_AUTHORIZATION": f"Api-Key {key}"}
    assert_error(api_client.post(_inbound(first), BODY, format="json", **auth), 404)
    assert api_client.post(_inbound(second), BODY, format="json", **auth).status_code == 201


def test_a_bound_key_without_the_inbound_scope_is_a_403_insufficient_scope(api_client):
    shop = make_shop()
    api_key, key = api_key_create(name="jobs", scopes=["jobs:write"])
    inbound_key_bind(api_key=api_key, shop=shop)

    assert_error(
        api_client.post(_inbound(shop), BODY, format="json", HTTP_AUTHORIZATION=f"Api-Key {key}"),
        403,
        "insufficient_scope",
    )


def test_the_command_creates_a_key_bound_to_the_shop(api_client):
    shop = make_shop()
    out = io.StringIO()

    call_command("create_inbound_key", "--name", "line", "--shop", shop.slug, stdout=out)

    key = out.getvalue().strip().splitlines()[-1]
    api_key = ServiceApiKey.objects.get_from_key(key)
    assert api_key.scopes == ["shops:inbound"]
    assert InboundApiKey.objects.get(api_key=api_key).shop == shop
    assert (
        api_client.post(_inbound(shop), BODY, format="json", HTTP_AUTHORIZATION=f"Api-Key {key}").status_code
        == 201
    )


@pytest.mark.parametrize("shop", ["no-such-shop", "00000000-0000-0000-0000-000000000000"])
def test_the_command_refuses_an_unknown_shop(shop):
    with pytest.raises(CommandError):
        call_command("create_inbound_key", "--name", "line", "--shop", shop, stdout=io.StringIO())
    assert not ServiceApiKey.objects.exists()
