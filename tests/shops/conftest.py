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


@pytest.fixture
def channel_server(settings):
    """The LINE and Messenger APIs, local (tests/shops/channel_server.py); the SDK and httpx
    clients are pointed at it through settings. No request may break the channels' format."""
    from tests.shops.channel_server import GRAPH_VERSION, ChannelServer, start

    server = ChannelServer()
    httpd = start(server)
    settings.LINE_API_BASE_URL = server.url
    settings.MESSENGER_GRAPH_API_BASE_URL = server.url
    settings.MESSENGER_GRAPH_API_VERSION = GRAPH_VERSION
    settings.CHANNEL_HTTP_TIMEOUT_SECONDS = 30
    yield server
    server.let_go()
    httpd.shutdown()
    httpd.server_close()
    assert server.violations == []


LINE_SECRET = "line-channel-secret"
APP_SECRET = "meta-app-secret"
VERIFY_TOKEN = "verify-me-please"
PAGE_ID = "104532111"


@pytest.fixture
def line_integration(shop):
    from shops.models import SocialIntegration

    return SocialIntegration.objects.create(
        shop=shop,
        provider="line",
        account_id="2000111222",
        account_name="Shop LINE OA",
        access_token="line-channel-access-token",
        channel_secret=LINE_SECRET,
    )


@pytest.fixture
def facebook_integration(shop):
    from shops.models import SocialIntegration

    return SocialIntegration.objects.create(
        shop=shop,
        provider="facebook",
        account_id=PAGE_ID,
        account_name="Shop page",
        access_token="page-access-token",
        app_secret=APP_SECRET,
        verify_token=VERIFY_TOKEN,
    )
