"""What a failed channel delivery tells the shop: the channel's name, its HTTP status and the one-line
`message` the channel documents for its errors, never our host, port or path, the access token, the
rest of the channel's body or a Python exception's text. Every failure is fed through the real
SDK / httpx code path against the local stand-in (tests/shops/channel_server.py), and read back
through the messages API as the shop's staff see it."""

import pytest

from shops import services
from shops.models import Conversation, Message
from tests.live import free_port
from tests.shops.channel_server import LINE_PUSH, MESSENGER_SEND

pytestmark = pytest.mark.django_db

MARKER = "internal-detail-7f3a"  # in every part of a channel's answer that must not be shown

# (status, headers, JSON body) answers of each channel: its documented error shape with extra
# detail fields, an answer that is not the documented shape, and one that is not an object.
LINE_FAILURES = {
    "400 documented": (
        400,
        {},
        {"message": "The request body has 1 error(s)", "details": [{"message": MARKER, "property": MARKER}]},
    ),
    "401": (401, {}, {"message": "Authentication failed.", "details": [{"message": MARKER}]}),
    "429": (429, {"Retry-After": "1"}, {"message": "You have reached your monthly limit.", "trace": MARKER}),
    "500 undocumented": (500, {}, {"error": MARKER, "stack": f"at {MARKER}"}),
    "500 not an object": (500, {}, f"<html><body>{MARKER}</body></html>"),
}
MESSENGER_FAILURES = {
    "400 documented": (
        400,
        {},
        {
            "error": {
                "message": "(#100) Invalid parameter",
                "code": 100,
                "fbtrace_id": MARKER,
                "error_data": MARKER,
            }
        },
    ),
    "token refused": (
        400,
        {},
        {"error": {"message": "Error validating access token", "code": 190, "fbtrace_id": MARKER}},
    ),
    "429": (
        429,
        {"Retry-After": "1"},
        {
            "error": {
                "message": "Calls to this api have exceeded the rate limit.",
                "code": 613,
                "fbtrace_id": MARKER,
            }
        },
    ),
    "500 undocumented": (500, {}, {"oops": MARKER}),
    "500 not an object": (500, {}, f"<html><body>{MARKER}</body></html>"),
}


def shown_error(client, conversation, message) -> str:
    response = client.get(f"/api/shops/{conversation.shop_id}/conversations/{conversation.pk}/messages")
    assert response.status_code == 200
    (row,) = [r for r in response.json()["results"] if r["id"] == str(message.pk)]
    assert row["delivery_status"] in ("failed", "pending", "retrying"), row
    return row["error"]


def assert_nothing_internal(error: str, *, url: str, path: str, token: str) -> None:
    assert error, "a failed delivery says why"
    host_port = url.removeprefix("http://")
    for secret in (
        MARKER,
        host_port,
        host_port.split(":")[1],
        path,
        token,
        "Traceback",
        "Error(",
        "urllib3",
        "httpx",
    ):
        assert secret not in error, (secret, error)


def deliver_once(conversation, user) -> Message:
    message = services.message_send(conversation=conversation, user=user, text="Your order ships today.")
    services.message_deliver(message_id=message.pk)
    message.refresh_from_db()
    return message


def line_conversation_of(integration) -> Conversation:
    return Conversation.objects.create(
        shop=integration.shop,
        channel="line",
        customer_handle="U4af4980629e1c4ee5bf1d4d3b62c1c1f",
        integration=integration,
    )


def messenger_conversation_of(integration) -> Conversation:
    return Conversation.objects.create(
        shop=integration.shop, channel="facebook", customer_handle="6123456789012345", integration=integration
    )


@pytest.mark.parametrize("case", LINE_FAILURES)
def test_a_line_failure_shows_the_channel_status_and_message_only(
    case, channel_server, line_integration, auth_client, user
):
    conversation = line_conversation_of(line_integration)
    channel_server.script(LINE_PUSH, LINE_FAILURES[case])

    message = deliver_once(conversation, user)

    error = shown_error(auth_client, conversation, message)
    assert error.startswith(f"LINE API {LINE_FAILURES[case][0]}")
    assert_nothing_internal(error, url=channel_server.url, path=LINE_PUSH, token=channel_server.line_token)
    assert channel_server.violations == []


@pytest.mark.parametrize("case", MESSENGER_FAILURES)
def test_a_messenger_failure_shows_the_channel_status_and_message_only(
    case, channel_server, facebook_integration, auth_client, user
):
    conversation = messenger_conversation_of(facebook_integration)
    channel_server.script(MESSENGER_SEND, MESSENGER_FAILURES[case])

    message = deliver_once(conversation, user)

    error = shown_error(auth_client, conversation, message)
    assert error.startswith(f"Messenger API {MESSENGER_FAILURES[case][0]}")
    assert_nothing_internal(
        error, url=channel_server.url, path=MESSENGER_SEND, token=channel_server.page_token
    )
    assert channel_server.violations == []


@pytest.mark.parametrize("channel", ["line", "facebook"])
def test_an_unreachable_channel_is_named_without_its_address(
    channel, settings, line_integration, facebook_integration, auth_client, user
):
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there: connection refused
    settings.LINE_API_BASE_URL = closed
    settings.MESSENGER_GRAPH_API_BASE_URL = closed
    conversation = (
        line_conversation_of(line_integration)
        if channel == "line"
        else messenger_conversation_of(facebook_integration)
    )

    message = deliver_once(conversation, user)

    assert message.delivery_status != "sent"
    error = shown_error(auth_client, conversation, message)
    assert "unreachable" in error
    token = line_integration.access_token if channel == "line" else facebook_integration.access_token
    assert_nothing_internal(
        error, url=closed, path=LINE_PUSH if channel == "line" else MESSENGER_SEND, token=token
    )
