"""Role × action matrix and tenancy: a user of another shop gets 404 everywhere."""

import pytest

from shops import services
from shops.models import Role
from tests.conftest import assert_error, client_for
from tests.factories import UserFactory
from tests.shops.factories import (
    make_form,
    make_item,
    make_member,
    make_payment_method,
    make_shop,
    place_order,
)

pytestmark = pytest.mark.django_db

ALLOWED = {
    Role.OWNER: {"read", "stock", "orders", "chat", "manage", "own"},
    Role.ADMIN: {"read", "stock", "orders", "chat", "manage"},
    Role.STAFF: {"read", "stock", "orders", "chat"},
    Role.VIEWER: {"read"},
}


@pytest.fixture
def world():
    shop = make_shop()
    item = make_item(shop, stock=50)
    form = make_form(shop)
    order = place_order(form, [(item, 1)])
    _, _ = services.conversation_receive_message(shop=shop, channel="line", customer_handle="U1", text="hi")
    conversation = shop.conversations.get()
    keyword = shop.keyword_replies.create(keywords=["price"], reply="100 THB")
    saved = shop.saved_replies.create(title="Thanks", text="Thank you")
    method = make_payment_method(shop)
    integration = shop.integrations.create(provider="line", account_id="acc", access_token="secret-token")
    viewer = make_member(shop, Role.VIEWER)
    return {
        "shop": shop,
        "item": item,
        "form": form,
        "order": order,
        "conversation": conversation,
        "keyword": keyword,
        "saved": saved,
        "method": method,
        "integration": integration,
        "viewer_member": viewer,
    }


def base(w) -> str:
    return f"/api/shops/{w['shop'].pk}"


# (kind, method, path, body): one representative request per endpoint and method.
def requests(w) -> list[tuple[str, str, str, dict | None]]:
    b = base(w)
    i, o, c = w["item"].pk, w["order"].pk, w["conversation"].pk
    return [
        ("read", "get", f"{b}", None),
        ("read", "get", f"{b}/members", None),
        ("read", "get", f"{b}/members/{w['viewer_member'].pk}", None),
        ("read", "get", f"{b}/items", None),
        ("read", "get", f"{b}/items/low-stock", None),
        ("read", "get", f"{b}/items/{i}", None),
        ("read", "get", f"{b}/items/{i}/stock", None),
        ("read", "get", f"{b}/forms", None),
        ("read", "get", f"{b}/forms/{w['form'].pk}", None),
        ("read", "get", f"{b}/orders", None),
        ("read", "get", f"{b}/orders/{o}", None),
        ("read", "get", f"{b}/payment-methods", None),
        ("read", "get", f"{b}/payment-methods/{w['method'].pk}", None),
        ("read", "get", f"{b}/conversations", None),
        ("read", "get", f"{b}/conversations/{c}", None),
        ("read", "get", f"{b}/conversations/{c}/messages", None),
        ("read", "get", f"{b}/keyword-replies", None),
        ("read", "get", f"{b}/keyword-replies/{w['keyword'].pk}", None),
        ("read", "get", f"{b}/saved-replies", None),
        ("read", "get", f"{b}/saved-replies/{w['saved'].pk}", None),
        ("read", "get", f"{b}/integrations", None),
        ("read", "get", f"{b}/integrations/{w['integration'].pk}", None),
        ("stock", "post", f"{b}/items/{i}/stock", {"change": 1, "reason": "manual"}),
        ("orders", "patch", f"{b}/orders/{o}", {"status": "confirmed"}),
        ("chat", "post", f"{b}/conversations/{c}/messages", {"text": "hello"}),
        ("chat", "patch", f"{b}/conversations/{c}", {"status": "closed"}),
        (
            "chat",
            "post",
            f"{b}/conversations/inbound",
            {"channel": "line", "customer_handle": "U2", "text": "x"},
        ),
        ("manage", "post", f"{b}/items", {"sku": "NEW-1", "name": "New", "price": "10.00"}),
        ("manage", "patch", f"{b}/items/{i}", {"name": "Renamed"}),
        ("manage", "delete", f"{b}/items/{make_item(w['shop'], stock=0).pk}", None),
        ("manage", "post", f"{b}/members", {"email": UserFactory().email, "role": "staff"}),
        ("manage", "patch", f"{b}/members/{w['viewer_member'].pk}", {"role": "viewer"}),
        ("manage", "post", f"{b}/forms", {"name": "F", "slug": "new-form"}),
        ("manage", "patch", f"{b}/forms/{w['form'].pk}", {"name": "F2"}),
        ("manage", "post", f"{b}/payment-methods", {"kind": "card", "name": "Card"}),
        ("manage", "patch", f"{b}/payment-methods/{w['method'].pk}", {"name": "PP"}),
        ("manage", "post", f"{b}/keyword-replies", {"keywords": ["hi"], "reply": "hello"}),
        ("manage", "patch", f"{b}/keyword-replies/{w['keyword'].pk}", {"priority": 3}),
        ("manage", "delete", f"{b}/keyword-replies/{w['keyword'].pk}", None),
        ("manage", "post", f"{b}/saved-replies", {"title": "T", "text": "x"}),
        ("manage", "patch", f"{b}/saved-replies/{w['saved'].pk}", {"title": "T2"}),
        ("manage", "delete", f"{b}/saved-replies/{w['saved'].pk}", None),
        (
            "manage",
            "post",
            f"{b}/integrations",
            {"provider": "facebook", "account_id": "p1", "access_token": "t"},
        ),
        ("manage", "patch", f"{b}/integrations/{w['integration'].pk}", {"account_name": "n"}),
        ("manage", "delete", f"{b}/integrations/{w['integration'].pk}", None),
        ("manage", "delete", f"{b}/payment-methods/{w['method'].pk}", None),
        ("manage", "delete", f"{b}/forms/{w['form'].pk}", None),
        ("manage", "delete", f"{b}/members/{w['viewer_member'].pk}", None),
        ("own", "patch", f"{b}", {"name": "Renamed shop"}),
        ("own", "delete", f"{b}", None),
    ]


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN, Role.STAFF, Role.VIEWER])
def test_each_role_may_do_exactly_what_spec_section_6_grants(role, world):
    member = make_member(world["shop"], role)
    client = client_for(member.user)
    kinds_seen = set()
    for kind, method, path, body in requests(world):
        kinds_seen.add(kind)
        response = getattr(client, method)(path, body, format="json")
        if kind in ALLOWED[role]:
            ok = (200, 201, 202, 204)  # 202: POST members sends an invitation
            assert response.status_code in ok, (role, kind, method, path, response.content[:300])
        else:
            assert_error(response, 403, "permission_denied")
    assert kinds_seen == {"read", "stock", "orders", "chat", "manage", "own"}


def test_a_user_of_another_shop_gets_404_on_every_shop_endpoint(world, other_user):
    make_shop(owner=other_user)  # a shop owner, just not of this shop
    client = client_for(other_user)
    for _, method, path, body in requests(world):
        assert_error(getattr(client, method)(path, body, format="json"), 404, "not_found")
    world["item"].refresh_from_db()
    assert world["item"].name != "Renamed"


def test_a_nonexistent_shop_and_a_foreign_shop_look_the_same(world, other_client):
    missing = other_client.get("/api/shops/00000000-0000-0000-0000-000000000000/items")
    foreign = other_client.get(f"{base(world)}/items")
    assert missing.status_code == foreign.status_code == 404
    assert missing.json() == foreign.json()


def test_anonymous_gets_401_on_every_shop_endpoint(world, api_client):
    for _, method, path, body in requests(world):
        assert_error(getattr(api_client, method)(path, body, format="json"), 401)


def test_objects_of_another_shop_are_404_even_for_a_member_of_both(world, user):
    # given: user owns their own shop and also staffs `world`; ids of world's objects under own shop
    own = make_shop(owner=user)
    client = client_for(user)
    b = f"/api/shops/{own.pk}"
    for path in (
        f"{b}/items/{world['item'].pk}",
        f"{b}/orders/{world['order'].pk}",
        f"{b}/conversations/{world['conversation'].pk}/messages",
        f"{b}/forms/{world['form'].pk}",
        f"{b}/integrations/{world['integration'].pk}",
        f"{b}/items/{world['item'].pk}/stock",
    ):
        assert_error(client.get(path), 404, "not_found")
    response = client.post(f"{b}/items/{world['item'].pk}/stock", {"change": -1}, format="json")
    assert_error(response, 404)


def test_service_key_with_inbound_scope_may_post_inbound_messages_only(world, api_client):
    from accounts.services import api_key_create
    from shops.services.inbound_keys import inbound_key_create

    _, key = inbound_key_create(shop=world["shop"], name="line-connector")
    _, wrong = api_key_create(name="other", scopes=["jobs:report"])
    body = {"channel": "line", "customer_handle": "U9", "text": "hi"}
    api_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    assert api_client.post(f"{base(world)}/conversations/inbound", body, format="json").status_code == 201
    assert_error(api_client.get(f"{base(world)}/items"), 403, "insufficient_scope")
    missing = "/api/shops/00000000-0000-0000-0000-000000000000/conversations/inbound"
    assert_error(api_client.post(missing, body, format="json"), 404)
    api_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {wrong}")
    assert_error(api_client.post(f"{base(world)}/conversations/inbound", body, format="json"), 403)
