"""Shops, members, items, stock, forms, payment methods, replies: happy paths, bad input, lists."""

import pytest

from shops.models import Item, Role, Shop, StockHistory, TeamMember
from tests.conftest import assert_error, client_for
from tests.factories import UserFactory
from tests.shops.factories import assert_chain, make_form, make_item, make_member, make_shop

pytestmark = pytest.mark.django_db


def url(shop, suffix=""):
    return f"/api/shops/{shop.pk}{suffix}"


# --- shops --------------------------------------------------------------------------------------


def test_creating_a_shop_makes_the_caller_its_owner(auth_client, user):
    response = auth_client.post("/api/shops", {"name": "My Shop", "currency": "THB"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["role"] == "owner" and body["slug"].startswith("my-shop")
    shop = Shop.objects.get(pk=body["id"])
    assert TeamMember.objects.get(shop=shop).role == Role.OWNER and shop.owner == user


def test_shop_list_shows_only_my_shops_with_my_role(
    auth_client, user, shop, other_shop, django_assert_max_num_queries
):
    staffed = make_shop()
    make_member(staffed, Role.STAFF, user=user)
    with django_assert_max_num_queries(4):
        response = auth_client.get("/api/shops/")
    assert response.status_code == 200
    roles = {row["id"]: row["role"] for row in response.json()["results"]}
    assert roles == {str(shop.pk): "owner", str(staffed.pk): "staff"}


@pytest.mark.parametrize(
    "body",
    [
        {"name": ""},
        {"name": "x" * 201},
        {"name": "ok", "currency": "baht"},
        {"name": "ok", "timezone": "Mars/Olympus"},
        {"name": "ok", "slug": "a b"},
    ],
)
def test_shop_create_rejects_bad_input(auth_client, body):
    assert_error(auth_client.post("/api/shops", body, format="json"), 400, "validation_error")
    assert not Shop.objects.exists()


def test_shop_slug_taken_is_a_400(auth_client, other_shop):
    response = auth_client.post("/api/shops", {"name": "x", "slug": other_shop.slug}, format="json")
    assert "slug" in assert_error(response, 400, "validation_error")["fields"]


def test_owner_updates_and_deletes_the_shop(auth_client, shop, item, form):
    from tests.shops.factories import place_order

    place_order(form, [(item, 1)])
    response = auth_client.patch(url(shop), {"name": "Renamed"}, format="json")
    assert response.status_code == 200 and response.json()["name"] == "Renamed"
    assert auth_client.delete(url(shop)).status_code == 204
    assert not Shop.objects.filter(pk=shop.pk).exists()


def test_shop_endpoints_need_login(api_client):
    assert_error(api_client.get("/api/shops"), 401)
    assert_error(api_client.post("/api/shops", {"name": "x"}, format="json"), 401)


# --- members ------------------------------------------------------------------------------------


def test_admin_changes_a_members_role_and_lists_the_team(shop, django_assert_max_num_queries):
    # members join by invitation (tests/shops/test_invitations.py); here one has joined already
    admin = make_member(shop, Role.ADMIN)
    client = client_for(admin.user)
    member_id = make_member(shop, Role.VIEWER).pk
    assert (
        client.patch(url(shop, f"/members/{member_id}"), {"role": "staff"}, format="json").json()["role"]
        == "staff"
    )
    with django_assert_max_num_queries(4):
        listed = client.get(url(shop, "/members"))
    assert {m["role"] for m in listed.json()["results"]} == {"owner", "admin", "staff"}


@pytest.mark.parametrize(
    "body",
    [
        {"email": "not-an-email", "role": "staff"},
        {"email": "x@example.com", "role": "emperor"},
        {"role": "staff"},
    ],
)
def test_member_add_rejects_bad_input(auth_client, shop, body):
    assert_error(auth_client.post(url(shop, "/members"), body, format="json"), 400, "validation_error")


def test_the_owner_role_cannot_be_granted_and_the_owner_cannot_be_removed(auth_client, shop, user):
    other = UserFactory()
    response = auth_client.post(url(shop, "/members"), {"email": other.email, "role": "owner"}, format="json")
    assert "role" in assert_error(response, 400, "validation_error")["fields"]
    owner_member = TeamMember.objects.get(shop=shop, user=user)
    assert_error(auth_client.delete(url(shop, f"/members/{owner_member.pk}")), 403, "owner_membership")
    assert_error(
        auth_client.patch(url(shop, f"/members/{owner_member.pk}"), {"role": "viewer"}, format="json"),
        403,
        "owner_membership",
    )


# --- items --------------------------------------------------------------------------------------


def test_item_create_with_initial_stock_starts_the_history_chain(auth_client, shop):
    body = {
        "sku": "A-1",
        "name": "Apple",
        "price": "12.50",
        "cost": "5.00",
        "stock_quantity": 7,
        "category": "fruit",
    }
    response = auth_client.post(url(shop, "/items"), body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["stock_quantity"] == 7 and response.json()["price"] == "12.50"
    assert_chain(Item.objects.get(pk=response.json()["id"]))


@pytest.mark.parametrize(
    "body",
    [
        {"sku": "A", "name": "x", "price": "-1"},
        {"sku": "A", "name": "x", "stock_quantity": -1},
        {"sku": "A", "name": "x", "stock_quantity": 10**12},
        {"sku": "A", "name": "x", "kind": "gadget"},
        {"sku": "A" * 65, "name": "x"},
        {"name": "no sku"},
        {"sku": "A", "name": "x", "price": "1e400"},
        {"sku": "A", "name": "x", "price": "12.345"},
        {"sku": "A", "name": "x", "low_stock_threshold": 10**11},
    ],
)
def test_item_create_rejects_bad_input(auth_client, shop, body):
    assert_error(auth_client.post(url(shop, "/items"), body, format="json"), 400, "validation_error")
    assert not Item.objects.filter(shop=shop).exists()


def test_duplicate_sku_in_the_same_shop_is_a_400(auth_client, shop):
    make_item(shop, sku="DUP")
    response = auth_client.post(url(shop, "/items"), {"sku": "DUP", "name": "x"}, format="json")
    assert "sku" in assert_error(response, 400, "validation_error")["fields"]


def test_item_patch_cannot_change_the_stock(auth_client, shop, item):
    response = auth_client.patch(
        url(shop, f"/items/{item.pk}"), {"stock_quantity": 999, "name": "Renamed"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["stock_quantity"] == 10 and response.json()["name"] == "Renamed"


def test_item_in_an_order_cannot_be_deleted(auth_client, shop, item, form):
    from tests.shops.factories import place_order

    place_order(form, [(item, 1)])
    assert_error(auth_client.delete(url(shop, f"/items/{item.pk}")), 409, "item_in_use")


def test_item_filters(auth_client, shop):
    make_item(shop, name="Red shirt", category="apparel", stock=1, low_stock_threshold=2)
    make_item(shop, name="Blue mug", category="homeware", stock=10, sku="MUG-BLUE")
    make_item(shop, name="Old shirt", category="apparel", stock=10, is_active=False)

    def names(query):
        response = auth_client.get(url(shop, f"/items?{query}"))
        assert response.status_code == 200, response.content
        return sorted(r["name"] for r in response.json()["results"])

    assert names("category=apparel") == ["Old shirt", "Red shirt"]
    assert names("low_stock=true") == ["Red shirt"]
    assert names("low_stock=false") == ["Blue mug", "Old shirt"]
    assert names("search=SHIRT") == ["Old shirt", "Red shirt"]
    assert names("search=mug-blue") == ["Blue mug"]
    assert names("is_active=false") == ["Old shirt"]
    assert names("is_active=true&category=apparel") == ["Red shirt"]


@pytest.mark.parametrize("query", ["low_stock=maybe", "is_active=perhaps", "page=abc", "page=999"])
def test_item_list_rejects_bad_filters_with_4xx(auth_client, shop, query):
    response = auth_client.get(url(shop, f"/items?{query}"))
    assert 400 <= response.status_code < 500
    assert "error" in response.json()


def test_item_list_query_count_does_not_grow_with_items(auth_client, shop, django_assert_max_num_queries):
    for _ in range(15):
        make_item(shop)
    with django_assert_max_num_queries(4):
        response = auth_client.get(url(shop, "/items?page_size=100"))
    assert response.json()["count"] == 15


def test_low_stock_endpoint(auth_client, shop, django_assert_max_num_queries):
    low = make_item(shop, stock=1, low_stock_threshold=3)
    make_item(shop, stock=9, low_stock_threshold=3)
    with django_assert_max_num_queries(4):
        response = auth_client.get(url(shop, "/items/low-stock"))
    assert [r["id"] for r in response.json()["results"]] == [str(low.pk)]


# --- stock --------------------------------------------------------------------------------------


def test_stock_post_returns_the_item_and_the_history_row(auth_client, shop, item, user):
    response = auth_client.post(
        url(shop, f"/items/{item.pk}/stock"),
        {"change": -4, "reason": "adjustment", "note": "damaged"},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["item"]["stock_quantity"] == 6
    assert body["history"]["quantity_before"] == 10 and body["history"]["quantity_after"] == 6
    assert body["history"]["user_id"] == str(user.pk) and body["history"]["reason"] == "adjustment"
    assert_chain(item)


def test_stock_below_zero_is_a_409(auth_client, shop, item):
    response = auth_client.post(url(shop, f"/items/{item.pk}/stock"), {"change": -11}, format="json")
    assert_error(response, 409, "insufficient_stock")
    item.refresh_from_db()
    assert item.stock_quantity == 10


@pytest.mark.parametrize(
    "body",
    [
        {"change": 0},
        {"change": "many"},
        {"change": 1.5},
        {"change": 10**12},
        {"change": 1, "reason": "order"},
        {"change": 1, "reason": "cancellation"},
        {"change": 1, "reason": "theft"},
        {},
        {"change": 1, "note": "x" * 501},
    ],
)
def test_stock_post_rejects_bad_input(auth_client, shop, item, body):
    assert_error(auth_client.post(url(shop, f"/items/{item.pk}/stock"), body, format="json"), 400)
    assert StockHistory.objects.filter(item=item).count() == 1


def test_stock_history_lists_newest_first(auth_client, shop, item, django_assert_max_num_queries):
    for change in (1, 2, 3):
        auth_client.post(url(shop, f"/items/{item.pk}/stock"), {"change": change}, format="json")
    with django_assert_max_num_queries(5):
        response = auth_client.get(url(shop, f"/items/{item.pk}/stock"))
    assert [r["change"] for r in response.json()["results"]] == [3, 2, 1, 10]


# --- forms, payment methods, replies ------------------------------------------------------------


def test_form_crud_validates_the_field_schema(auth_client, shop):
    good = {
        "name": "Order",
        "slug": "order-now",
        "fields": [
            {"name": "name", "type": "text", "required": True},
            {"name": "size", "type": "select", "options": ["S", "M"], "required": True},
        ],
    }
    response = auth_client.post(url(shop, "/forms"), good, format="json")
    assert response.status_code == 201, response.content
    for fields in (
        [{"name": "Bad Name"}],
        [{"name": "x", "type": "color"}],
        [{"name": "s", "type": "select"}],
        [{"name": "a"}, {"name": "a"}],
        "not-a-list",
        [[1]],
    ):
        bad = {"name": "x", "slug": "other", "fields": fields}
        assert_error(auth_client.post(url(shop, "/forms"), bad, format="json"), 400, "validation_error")
    dup = {"name": "x", "slug": "order-now"}
    assert_error(auth_client.post(url(shop, "/forms"), dup, format="json"), 400, "validation_error")


def test_form_list_query_count(auth_client, shop, django_assert_max_num_queries):
    for _ in range(5):
        make_form(shop)
    with django_assert_max_num_queries(4):
        assert auth_client.get(url(shop, "/forms")).json()["count"] == 5


def test_payment_methods_crud(auth_client, shop, django_assert_max_num_queries):
    body = {"kind": "bank_transfer", "name": "KBank", "details": {"account": "123-4-56789-0"}}
    response = auth_client.post(url(shop, "/payment-methods"), body, format="json")
    assert response.status_code == 201 and response.json()["details"] == body["details"]
    for bad in (
        {"kind": "gold", "name": "x"},
        {"kind": "card", "name": "x", "details": ["a"]},
        {"kind": "card", "name": "x", "details": {"k": {"nested": 1}}},
    ):
        assert_error(auth_client.post(url(shop, "/payment-methods"), bad, format="json"), 400)
    with django_assert_max_num_queries(4):
        assert auth_client.get(url(shop, "/payment-methods")).json()["count"] == 1


def test_keyword_and_saved_replies_crud(auth_client, shop, django_assert_max_num_queries):
    response = auth_client.post(
        url(shop, "/keyword-replies"),
        {"keywords": ["price", "cost"], "match": "contains", "reply": "100", "priority": 5},
        format="json",
    )
    assert response.status_code == 201, response.content
    for bad in (
        {"keywords": [], "reply": "x"},
        {"keywords": "price", "reply": "x"},
        {"keywords": ["x"], "reply": "x", "match": "regex"},
        {"keywords": ["x"], "reply": "x", "priority": 10**10},
    ):
        assert_error(auth_client.post(url(shop, "/keyword-replies"), bad, format="json"), 400)
    saved = auth_client.post(
        url(shop, "/saved-replies"), {"title": "Hi", "text": "Hello!", "shortcut": "/hi"}, format="json"
    )
    assert saved.status_code == 201
    dup = auth_client.post(
        url(shop, "/saved-replies"), {"title": "Hi2", "text": "x", "shortcut": "/hi"}, format="json"
    )
    assert_error(dup, 400, "validation_error")
    with django_assert_max_num_queries(4):
        assert auth_client.get(url(shop, "/keyword-replies")).json()["count"] == 1
    with django_assert_max_num_queries(4):
        assert auth_client.get(url(shop, "/saved-replies")).json()["count"] == 1


def test_stock_that_would_overflow_is_a_400_not_a_500(auth_client, shop):
    item = make_item(shop, stock=1_999_999_999)
    response = auth_client.post(
        url(shop, f"/items/{item.pk}/stock"), {"change": 1_999_999_999}, format="json"
    )
    assert "change" in assert_error(response, 400, "validation_error")["fields"]
    item.refresh_from_db()
    assert item.stock_quantity == 1_999_999_999
    assert_chain(item)
