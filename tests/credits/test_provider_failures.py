"""A failing payment provider never leaks into what the caller reads.

Every way Stripe's and Razorpay's APIs can fail — 400, 401, 402, 429, 500, a malformed body, a
dropped connection, a refused connection, no answer in time — is played by a local HTTP server
(tests/credits/gateway.py) that the official SDKs call for real. The purchase answers the 502
`provider_error` envelope and a staff refund the admin's message; neither carries the server's
host, port or path, the provider's body or the exception's text.
"""

import socket
import threading

import pytest

from credits.models import Payment
from tests.conftest import assert_error
from tests.credits import test_provider_refunds as refunds
from tests.credits.gateway import RESET
from tests.credits.test_provider_refunds import paid_through, refund_path, staff_refund

# Words a provider's body carries that must never reach the caller.
LEAK = "leaky-internal-detail-7f3a"

FAILURES = {
    "400": lambda: (400, {"error": {"type": "invalid_request_error", "message": LEAK, "code": LEAK}}),
    "401": lambda: (401, {"error": {"type": "authentication_error", "message": LEAK}}),
    "402": lambda: (402, {"error": {"type": "card_error", "message": LEAK, "description": LEAK}}),
    "429": lambda: (429, {"error": {"type": "rate_limit_error", "message": LEAK}}),
    "500": lambda: (500, {"error": {"type": "api_error", "message": LEAK, "description": LEAK}}),
    "malformed": lambda: (200, f"<html>{LEAK} upstream proxy error".encode()),
    "reset": lambda: (RESET, None),
}
NETWORK = ["refused", "timeout"]
CHECKOUT_PATH = {"stripe": "/v1/checkout/sessions", "razorpay": "/v1/orders"}


def _forbidden_words(gateway) -> list[str]:
    host, port = gateway.server.server_address[:2]
    return [LEAK, host, f":{port}", "/v1/", "Traceback", "HTTPConnection", "Errno", "urllib3", "Max retries"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


gateway = refunds.gateway
staff = refunds.staff
admin_client = refunds.admin_client


@pytest.fixture
def hang(gateway, settings):
    """A route that answers only after the client has given up (bounded: released at teardown)."""
    settings.PAYMENT_PROVIDER_TIMEOUT_SECONDS = 1
    released = threading.Event()

    def answer(request):
        released.wait(30)
        return 500, {"error": {"type": "api_error", "message": LEAK}}

    yield answer
    released.set()


def _fail(gateway, settings, request, failure: str, path: str) -> None:
    if failure == "refused":
        url = f"http://127.0.0.1:{_closed_port()}"
        settings.STRIPE_API_BASE = settings.RAZORPAY_API_BASE = url
        return
    answer = request.getfixturevalue("hang") if failure == "timeout" else (lambda r: FAILURES[failure]())
    gateway.route("POST", path, answer)


def _assert_clean(text: str, gateway) -> None:
    for word in _forbidden_words(gateway):
        assert word not in text, (word, text)


@pytest.mark.django_db
@pytest.mark.parametrize("failure", [*FAILURES, *NETWORK])
@pytest.mark.parametrize("provider", ["stripe", "razorpay"])
def test_a_failed_checkout_is_a_502_envelope_without_internal_details(
    gateway, settings, request, auth_client, seeded_package, provider, failure
):
    # given a provider failing this way
    _fail(gateway, settings, request, failure, CHECKOUT_PATH[provider])
    package = seeded_package("Popular Pack")

    # when the user buys through it
    response = auth_client.post(
        "/api/credits/purchases", {"package_id": str(package.id), "provider": provider}, format="json"
    )

    # then the caller reads the envelope and nothing of where or what failed
    assert_error(response, 502, "provider_error")
    _assert_clean(response.content.decode(), gateway)
    assert not Payment.objects.filter(provider=provider).exists()
    if failure not in NETWORK:
        assert [r.path for r in gateway.requests] == [CHECKOUT_PATH[provider]]


@pytest.mark.django_db
@pytest.mark.parametrize("failure", ["401", "429", "500", "malformed", "reset", *NETWORK])
@pytest.mark.parametrize("provider", ["stripe", "razorpay"])
def test_a_refund_the_provider_fails_tells_staff_nothing_internal(
    gateway, settings, request, admin_client, provider, failure
):
    # given a paid payment and a provider failing this way (a 400/402 refusal tells staff the
    # provider's own reason on purpose: tests/credits/test_provider_refunds.py)
    payment = paid_through(provider)
    _fail(gateway, settings, request, failure, refund_path(provider))

    # when staff refund it
    response, _ = staff_refund(admin_client, payment, "100.00")

    # then the page says the provider failed, and nothing of where or what
    assert response.status_code == 200
    page = response.content.decode()
    said = ("could not take the refund", "could not be reached", "refused the refund")
    assert any(words in page for words in said), page[:2000]
    _assert_clean(page, gateway)
    payment.refresh_from_db()
    assert payment.refunded_amount == 0
