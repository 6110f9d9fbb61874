"""A bounded, deterministic schemathesis run over every operation of the OpenAPI schema, in
process against the WSGI app and the real test database.

Checks: no 5xx (`not_a_server_error`), every response matches its documented schema
(`response_schema_conformance`), its status code is documented (`status_code_conformance`), and
no request that breaks the schema is accepted (`negative_data_rejection`; none is accepted today,
so there is no allow-list). Throttles and the login lockout are lifted here only, so generated
traffic is judged on its content, not its rate. Seeded and bounded: MAX_EXAMPLES per operation,
derandomized, so each run sends the same requests (about 9 minutes on a busy 2-core machine).
"""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework_simplejwt.tokens import RefreshToken
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from config.throttling import SlidingWindowThrottle
from config.wsgi import application
from jobs.models import Project
from shops import services
from shops.models import Role
from tests.factories import UserFactory
from tests.shops.factories import (
    make_form,
    make_item,
    make_member,
    make_payment_method,
    make_shop,
    place_order,
)

MAX_EXAMPLES = 8
SEED = 20261122

CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    negative_data_rejection,
]


# Loaded at collection (pytest-django has configured Django by then; generating the schema
# touches no database). schemathesis.pytest.from_fixture would be lazier, but its 4.32 release
# reads pytest's private `_nodeid`, which pytest 9 no longer has.
schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


@pytest.fixture
def lifted(monkeypatch, settings):
    monkeypatch.setattr(SlidingWindowThrottle, "allow_request", lambda self, request, view: True)
    settings.AXES_ENABLED = False
    # Like django.test.Client: the WSGI handler must not close the test's connection (and with
    # it the transaction that rolls the test back) at the end of each request.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def world(db) -> dict:
    """A user who owns a shop with one of everything, so generated requests reach real rows
    (path parameters are pointed at them below) instead of stopping at 404."""
    user = UserFactory()
    shop = make_shop(owner=user)
    item = make_item(shop, stock=50)
    form = make_form(shop)
    order = place_order(form, [(item, 1)])
    services.conversation_receive_message(shop=shop, channel="line", customer_handle="U1", text="hi")
    conversation = shop.conversations.get()
    services.message_send(conversation=conversation, user=user, text="hello")
    return {
        "user": user,
        "ids": {
            "shop_id": shop.pk,
            "item_id": item.pk,
            "form_id": form.pk,
            "order_id": order.pk,
            "conversation_id": conversation.pk,
            "member_id": make_member(shop, Role.STAFF).pk,
            "payment_method_id": make_payment_method(shop).pk,
            "integration_id": shop.integrations.create(provider="line", account_id="a", access_token="t").pk,
            "keyword_reply_id": shop.keyword_replies.create(keywords=["price"], reply="100 THB").pk,
            "saved_reply_id": shop.saved_replies.create(title="Thanks", text="Thank you").pk,
            "slug": form.slug,
            "project_id": Project.objects.create(user=user, name="Parts").pk,
        },
    }


def _point_at_world(case, ids: dict) -> None:
    params = case.path_parameters or {}
    for name in list(params):
        key = name
        if name == "reply_id":
            key = "keyword_reply_id" if "keyword" in case.path else "saved_reply_id"
        if key in ids:
            params[name] = str(ids[key])


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@pytest.mark.django_db
def test_api_conforms_to_its_schema(case, lifted, world):
    _point_at_world(case, world["ids"])
    bearer = {"Authorization": f"Bearer {RefreshToken.for_user(world['user']).access_token}"}
    headers = bearer if "Authorization" not in (case.headers or {}) else None
    case.call_and_validate(headers=headers, checks=CHECKS)
