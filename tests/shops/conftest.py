import pytest

from tests.shops.factories import make_form, make_item, make_shop


@pytest.fixture
def shop(user):
    """A shop owned by the `user` fixture (so `auth_client` is its owner)."""
    return make_shop(owner=user)


@pytest.fixture
def other_shop(other_user):
    return make_shop(owner=other_user)


@pytest.fixture
def item(shop):
    return make_item(shop, stock=10)


@pytest.fixture
def form(shop):
    return make_form(shop)
