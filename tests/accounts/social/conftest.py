import pytest

from tests.accounts.social.providers import Keys, ProviderStandIn


@pytest.fixture(scope="session")
def provider_keys():
    return Keys()


@pytest.fixture(scope="session")
def standin_server(provider_keys):
    server = ProviderStandIn(provider_keys)
    yield server
    server.stop()


@pytest.fixture
def providers(standin_server):
    """The stand-in with its default routes and an empty request log."""
    standin_server.reset()
    yield standin_server
    standin_server.reset()
