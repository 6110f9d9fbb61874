"""The public order form and order handling."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from shops import services
from shops.models import FormSubmission, FormSubmissionLine, Item, Role
from tests.conftest import assert_error, client_for
from tests.shops.factories import (
    CUSTOMER,
    assert_chain,
    make_form,
    make_item,
    make_member,
    make_payment_method,
    place_order,
)

pytestmark = pytest.mark.django_db


def submit(client, form, lines, **extra):
    body = {"customer": dict(CUSTOMER), "lines": lines, **extra}
    return client.post(f"/api/public/forms/{form.slug}/submit", body, format="json")


def test_public_form_shows_fields_active_items_and_payment_methods_without_login(
    api_client, shop, form, django_assert_max_num_queries
):
    item = make_item(shop, stock=3)
    make_item(shop, is_active=False)
    make_payment_method(shop)
    make_payment_method(shop, name="Old", is_active=False)
    with django_assert_max_num_queries(4):
        response = api_client.get(f"/api/public/forms/{form.slug}/")
    assert response.status_code == 200
    body = response.json()
    assert [i["id"] for i in body["items"]] == [str(item.pk)]
    assert "cost" not in body["items"][0] and "stock_quantity" not in body["items"][0]
    assert [p["name"] for p in body["payment_methods"]] == ["PromptPay"]
    assert {f["name"] for f in body["fields"]} == {"name", "phone", "email", "address"}


def test_inactive_or_unknown_form_is_404(api_client, shop):
    form = make_form(shop, is_active=False)
    assert_error(api_client.get(f"/api/public/forms/{form.slug}"), 404)
    assert_error(api_client.get("/api/public/forms/nope"), 404)
    assert_error(submit(api_client, form, []), 404)


def test_submitting_creates_the_order_deducts_stock_and_snapshots_price_and_cost(api_client, shop, form):
    # given
    a = make_item(shop, stock=5, price=Decimal("100.00"), cost=Decimal("40.00"))
    b = make_item(shop, stock=5, price=Decimal("20.50"), cost=Decimal("8.25"))
    method = make_payment_method(shop)
    # when: item a appears on two lines
    response = submit(
        api_client,
        form,
        [
            {"item_id": str(a.pk), "quantity": 1},
            {"item_id": str(b.pk), "quantity": 2},
            {"item_id": str(a.pk), "quantity": 2},
        ],
        payment_method_id=str(method.pk),
        note="ring twice",
    )
    # then
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "new" and body["total"] == "341.00"
    assert all("unit_cost" not in line for line in body["lines"])
    order = FormSubmission.objects.get(pk=body["id"])
    lines = {line.item_id: line for line in order.lines.all()}
    assert lines[a.pk].quantity == 3 and lines[a.pk].unit_cost == Decimal("40.00")
    assert lines[b.pk].unit_price == Decimal("20.50") and lines[b.pk].unit_cost == Decimal("8.25")
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.stock_quantity, b.stock_quantity) == (2, 3)
    assert_chain(a)
    # and later price changes do not rewrite the order
    a.price = Decimal("999.00")
    a.save()
    assert FormSubmissionLine.objects.get(submission=order, item=a).unit_price == Decimal("100.00")


def test_an_order_that_cannot_be_fulfilled_changes_nothing_and_names_the_short_items(api_client, shop, form):
    a, b = make_item(shop, stock=5), make_item(shop, stock=1)
    response = submit(
        api_client, form, [{"item_id": str(a.pk), "quantity": 2}, {"item_id": str(b.pk), "quantity": 2}]
    )
    error = assert_error(response, 409, "insufficient_stock")
    assert [entry["item_id"] for entry in error["items"]] == [str(b.pk)]
    assert not FormSubmission.objects.exists()
    a.refresh_from_db()
    assert a.stock_quantity == 5


@pytest.mark.parametrize(
    "customer, field",
    [
        ({"phone": "+66 81 234 5678", "address": "x"}, "customer.name"),
        ({**CUSTOMER, "email": "not-an-email"}, "customer.email"),
        ({**CUSTOMER, "phone": "call me"}, "customer.phone"),
        ({**CUSTOMER, "favourite_colour": "red"}, "customer.favourite_colour"),
        ({**CUSTOMER, "name": ["a", "list"]}, "customer.name"),
        ({**CUSTOMER, "name": "x" * 201}, "customer.name"),
        ({**CUSTOMER, "name": "nul\x00byte"}, "customer.name"),
        ({**CUSTOMER, "address": 12345}, "customer.address"),
    ],
)
def test_submission_is_validated_against_the_form_fields(api_client, shop, form, customer, field):
    item = make_item(shop)
    body = {"customer": customer, "lines": [{"item_id": str(item.pk), "quantity": 1}]}
    response = api_client.post(f"/api/public/forms/{form.slug}/submit", body, format="json")
    assert field in assert_error(response, 400, "validation_error")["fields"]
    assert not FormSubmission.objects.exists()


def test_custom_form_fields_are_required_and_stored(api_client, shop):
    form = make_form(
        shop,
        fields=[
            {"name": "name", "type": "text", "required": True},
            {"name": "size", "type": "select", "options": ["S", "M"], "required": True},
        ],
    )
    item = make_item(shop)
    line = [{"item_id": str(item.pk), "quantity": 1}]
    missing = api_client.post(
        f"/api/public/forms/{form.slug}/submit", {"customer": {"name": "A"}, "lines": line}, format="json"
    )
    assert "customer.size" in assert_error(missing, 400)["fields"]
    wrong = api_client.post(
        f"/api/public/forms/{form.slug}/submit",
        {"customer": {"name": "A", "size": "XXL"}, "lines": line},
        format="json",
    )
    assert "customer.size" in assert_error(wrong, 400)["fields"]
    ok = api_client.post(
        f"/api/public/forms/{form.slug}/submit",
        {"customer": {"name": "A", "size": "M"}, "lines": line},
        format="json",
    )
    assert ok.status_code == 201 and ok.json()["customer"]["size"] == "M"
    nul = api_client.post(
        f"/api/public/forms/{form.slug}/submit",
        {"customer": {"name": "A", "size": "M\x00"}, "lines": line},
        format="json",
    )
    assert "customer.size" in assert_error(nul, 400)["fields"]


@pytest.mark.parametrize(
    "lines",
    [
        [],
        [{"item_id": "not-a-uuid", "quantity": 1}],
        [{"quantity": 1}],
        "lines",
        [{"item_id": None, "quantity": 1}],
    ],
)
def test_submission_rejects_bad_lines(api_client, form, lines):
    assert_error(submit(api_client, form, lines), 400, "validation_error")


def test_submission_rejects_items_of_other_shops_inactive_items_and_foreign_payment_methods(
    api_client, shop, form, other_shop
):
    foreign = make_item(other_shop)
    inactive = make_item(shop, is_active=False)
    mine = make_item(shop)
    for item in (foreign, inactive):
        response = submit(api_client, form, [{"item_id": str(item.pk), "quantity": 1}])
        assert "lines" in assert_error(response, 400, "validation_error")["fields"]
    foreign_method = make_payment_method(other_shop)
    response = submit(
        api_client, form, [{"item_id": str(mine.pk), "quantity": 1}], payment_method_id=str(foreign_method.pk)
    )
    assert "payment_method_id" in assert_error(response, 400)["fields"]
    for quantity in (0, -1, 10**9, "two", 1.5):
        response = submit(api_client, form, [{"item_id": str(mine.pk), "quantity": quantity}])
        assert_error(response, 400)
    foreign.refresh_from_db()
    assert foreign.stock_quantity == 10
    assert not FormSubmission.objects.exists()


def test_public_submit_is_throttled(api_client, shop, form, settings):
    from django.core.cache import cache
    from rest_framework.settings import api_settings
    from rest_framework.throttling import ScopedRateThrottle

    item = make_item(shop, stock=100)
    rates = {**api_settings.DEFAULT_THROTTLE_RATES, "public_form": "2/min"}
    original = ScopedRateThrottle.THROTTLE_RATES
    ScopedRateThrottle.THROTTLE_RATES = rates
    try:
        cache.clear()
        line = [{"item_id": str(item.pk), "quantity": 1}]
        assert submit(api_client, form, line).status_code == 201
        assert submit(api_client, form, line).status_code == 201
        assert_error(submit(api_client, form, line), 429, "throttled")
    finally:
        ScopedRateThrottle.THROTTLE_RATES = original
    assert FormSubmission.objects.count() == 2


# --- orders in the shop API ---------------------------------------------------------------------


def test_orders_list_filters_and_query_count(auth_client, shop, form, django_assert_max_num_queries):
    item = make_item(shop, stock=100)
    for _ in range(6):
        place_order(form, [(item, 1)])
    old = place_order(form, [(item, 2)])
    services.order_transition(shop_id=shop.pk, order_id=old.pk, to="paid")
    FormSubmission.objects.filter(pk=old.pk).update(submitted_at=timezone.now() - timedelta(days=10))
    base = f"/api/shops/{shop.pk}/orders"
    with django_assert_max_num_queries(5):
        response = auth_client.get(base)
    assert response.json()["count"] == 7
    assert response.json()["results"][0]["lines"][0]["unit_cost"] == "40.00"
    assert auth_client.get(f"{base}?status=paid").json()["count"] == 1
    today = timezone.now().date()
    assert auth_client.get(f"{base}?from={today}&to={today}").json()["count"] == 6
    old_day = (timezone.now() - timedelta(days=10)).date()
    assert auth_client.get(f"{base}?to={old_day}").json()["count"] == 1
    for bad in ("status=lost", "from=yesterday", "to=2026-13-45"):
        assert_error(auth_client.get(f"{base}?{bad}"), 400)


def test_order_status_moves_along_the_transition_table(shop, form):
    staff = client_for(make_member(shop, Role.STAFF).user)
    order = place_order(form, [(make_item(shop), 1)])
    path = f"/api/shops/{shop.pk}/orders/{order.pk}"
    for status in ("confirmed", "paid", "shipped", "completed"):
        response = staff.patch(path, {"status": status}, format="json")
        assert response.status_code == 200 and response.json()["status"] == status
    error = assert_error(staff.patch(path, {"status": "cancelled"}, format="json"), 409, "invalid_transition")
    assert error["from"] == "completed"


# How to reach each status through legal moves from `new`.
WALK_TO = {"new": [], "paid": ["paid"], "shipped": ["paid", "shipped"], "cancelled": ["cancelled"]}


@pytest.mark.parametrize(
    "start, target",
    [
        ("new", "shipped"),
        ("new", "completed"),
        ("new", "new"),
        ("cancelled", "new"),
        ("shipped", "paid"),
        ("paid", "confirmed"),
    ],
)
def test_illegal_order_transitions_are_409(auth_client, shop, form, start, target):
    order = place_order(form, [(make_item(shop), 1)])
    for step in WALK_TO[start]:  # legal moves only: the status guard refuses any other write
        services.order_transition(shop_id=shop.pk, order_id=order.pk, to=step)
    response = auth_client.patch(f"/api/shops/{shop.pk}/orders/{order.pk}", {"status": target}, format="json")
    assert_error(response, 409, "invalid_transition")


def test_cancelling_restocks_with_history_and_a_second_cancel_is_409(auth_client, shop, form):
    item = make_item(shop, stock=5)
    order = place_order(form, [(item, 3)])
    path = f"/api/shops/{shop.pk}/orders/{order.pk}"
    assert auth_client.patch(path, {"status": "cancelled"}, format="json").status_code == 200
    assert_error(auth_client.patch(path, {"status": "cancelled"}, format="json"), 409, "invalid_transition")
    item.refresh_from_db()
    assert item.stock_quantity == 5
    assert list(item.stock_history.order_by("id").values_list("reason", flat=True)) == [
        "manual",
        "order",
        "cancellation",
    ]
    assert_chain(item)


@pytest.mark.parametrize("body", [{"status": "lost"}, {"status": None}, {}, ["cancelled"], {"status": 3}])
def test_order_patch_rejects_bad_input(auth_client, shop, form, body):
    order = place_order(form, [(make_item(shop), 1)])
    response = auth_client.patch(f"/api/shops/{shop.pk}/orders/{order.pk}", body, format="json")
    assert_error(response, 400)
    order.refresh_from_db()
    assert order.status == "new"


def test_cancelling_gives_back_exactly_what_the_order_took_even_if_tracking_changed(auth_client, shop, form):
    # given: one line taken from stock, one from an untracked item
    tracked = make_item(shop, stock=5)
    untracked = make_item(shop, stock=0, track_stock=False)
    order = place_order(form, [(tracked, 2), (untracked, 3)])
    assert dict(order.lines.values_list("item_id", "stock_deducted")) == {
        tracked.pk: True,
        untracked.pk: False,
    }
    # and tracking flips on both items afterwards
    Item.objects.filter(pk=tracked.pk).update(track_stock=False)
    Item.objects.filter(pk=untracked.pk).update(track_stock=True)
    # when
    response = auth_client.patch(
        f"/api/shops/{shop.pk}/orders/{order.pk}", {"status": "cancelled"}, format="json"
    )
    # then
    assert response.status_code == 200
    tracked.refresh_from_db()
    untracked.refresh_from_db()
    assert (tracked.stock_quantity, untracked.stock_quantity) == (5, 0)
    assert_chain(tracked)
    assert_chain(untracked)


def test_the_public_order_schema_documents_the_lines_it_returns(api_client, shop, form):
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    operation = schema["paths"]["/api/public/forms/{slug}/submit"]["post"]
    order_ref = operation["responses"]["201"]["content"]["application/json"]["schema"]["$ref"]
    order = schema["components"]["schemas"][order_ref.rsplit("/", 1)[-1]]
    line_ref = order["properties"]["lines"]["items"]["$ref"]
    line = schema["components"]["schemas"][line_ref.rsplit("/", 1)[-1]]
    item = make_item(shop, stock=5, price=Decimal("10.00"), cost=Decimal("4.00"))

    response = submit(api_client, form, [{"item_id": str(item.pk), "quantity": 1}])

    assert response.status_code == 201, response.content
    (returned,) = response.json()["lines"]
    assert "unit_cost" not in line["properties"]
    assert set(line["required"]) <= set(returned) == set(line["properties"])
