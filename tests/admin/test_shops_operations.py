"""Stock, orders and plans from the admin, through stock_update, order_transition and
shop_plan_change (the services the shops API and billing use)."""

from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client
from django.urls import reverse

from shops.models import Item, Shop, StockHistory
from tests.admin.helpers import assert_logged, history, page_messages
from tests.credits.conftest import run_in_threads
from tests.factories import UserFactory, admin_login
from tests.shops.factories import assert_chain, make_form, make_item, make_shop, place_order

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop():
    return make_shop()


@pytest.fixture
def item(shop):
    return make_item(shop, stock=10)


@pytest.fixture
def order(shop, item):
    return place_order(make_form(shop), [(item, 4)])


def stock_url(item):
    return reverse("admin:shops_item_adjust_stock", args=[item.pk])


def transition_url(order):
    return reverse("admin:shops_formsubmission_transition", args=[order.pk])


def plan_url(shop):
    return reverse("admin:shops_shop_change_plan", args=[shop.pk])


# -- stock -------------------------------------------------------------------------------------


def test_adjust_stock_writes_the_history_with_the_staff_member_and_the_admin_log(
    admin_client, superuser, item
):
    page = admin_client.get(reverse("admin:shops_item_change", args=[item.pk])).content.decode()
    assert f'href="{stock_url(item)}" id="adjust-stock-link"' in page

    response = admin_client.post(
        stock_url(item), {"change": "-3", "stock_reason": "adjustment", "reason": "broken in storage"}
    )

    assert response.status_code == 302
    item.refresh_from_db()
    assert item.stock_quantity == 7
    entry = StockHistory.objects.filter(item=item).first()
    assert (entry.change, entry.reason, entry.note, entry.user_id) == (
        -3,
        "adjustment",
        "broken in storage",
        superuser.pk,
    )
    assert_chain(item)
    assert_logged(item, by=superuser, contains=["-3 (adjustment): 10 → 7", "Reason: broken in storage"])


def test_adjusting_below_zero_is_an_error_message_and_changes_nothing(admin_client, item):
    response = admin_client.post(
        stock_url(item), {"change": "-11", "stock_reason": "adjustment", "reason": "count"}
    )

    assert response.status_code == 200
    assert "Nothing was changed: see the errors below." in page_messages(response)
    assert response.context["form"].non_field_errors()
    assert Item.objects.get(pk=item.pk).stock_quantity == 10
    assert StockHistory.objects.filter(item=item).count() == 1 and not LogEntry.objects.exists()


@pytest.mark.parametrize(
    "data",
    [
        {"change": "0", "stock_reason": "adjustment", "reason": "x"},
        {"change": "many", "stock_reason": "adjustment", "reason": "x"},
        {"change": "5", "stock_reason": "order", "reason": "x"},  # orders move stock themselves
        {"change": "5", "stock_reason": "adjustment", "reason": ""},
    ],
)
def test_bad_stock_input_is_a_form_error(admin_client, item, data):
    response = admin_client.post(stock_url(item), data)

    assert response.status_code == 200 and response.context["form"].errors
    assert Item.objects.get(pk=item.pk).stock_quantity == 10 and not LogEntry.objects.exists()


def test_stock_adjustment_needs_the_change_permission(staff_client, item):
    assert (
        staff_client("view_item")
        .post(stock_url(item), {"change": "5", "stock_reason": "manual", "reason": "x"})
        .status_code
        == 403
    )
    assert Item.objects.get(pk=item.pk).stock_quantity == 10


# -- orders ------------------------------------------------------------------------------------


def test_order_page_offers_the_legal_moves(admin_client, order):
    page = admin_client.get(reverse("admin:shops_formsubmission_change", args=[order.pk])).content.decode()

    assert 'id="order-transition-form"' in page
    for status in ("confirmed", "paid", "cancelled"):
        assert f'id="order-to-{status}"' in page
    assert 'id="order-to-shipped"' not in page
    assert "Order lines" in page and "Form submission lines" not in page


def test_order_moves_through_its_states_and_each_move_is_logged(admin_client, superuser, order, item):
    for status in ("paid", "shipped", "completed"):
        response = admin_client.post(transition_url(order), {"status": status, "reason": f"to {status}"})
        assert response.status_code == 302

    order.refresh_from_db()
    assert order.status == "completed"
    assert [e.get_change_message() for e in history(order)][-1].endswith(
        "shipped → completed. Reason: to completed"
    )
    assert Item.objects.get(pk=item.pk).stock_quantity == 6


def test_cancel_restocks_once_even_when_submitted_twice(admin_client, superuser, order, item):
    first = admin_client.post(transition_url(order), {"status": "cancelled", "reason": "customer cancelled"})
    second = admin_client.post(transition_url(order), {"status": "cancelled", "reason": "customer cancelled"})

    assert first.status_code == 302
    assert (
        second.status_code == 200
        and "An order cannot go from cancelled to cancelled." in second.content.decode()
    )
    item.refresh_from_db()
    assert item.stock_quantity == 10
    assert StockHistory.objects.filter(item=item, reason="cancellation").count() == 1
    assert_chain(item)
    assert_logged(
        order, by=superuser, contains=["new → cancelled (stock given back)", "Reason: customer cancelled"]
    )


def test_operations_refuse_a_post_without_the_csrf_token(superuser, order, item):
    client = Client(enforce_csrf_checks=True)
    admin_login(client, superuser)

    response = client.post(transition_url(order), {"status": "cancelled", "reason": "forged"})

    assert response.status_code == 403
    order.refresh_from_db()
    assert order.status == "new" and Item.objects.get(pk=item.pk).stock_quantity == 6


def test_illegal_move_is_an_error_message(admin_client, order):
    response = admin_client.post(transition_url(order), {"status": "completed", "reason": "skip ahead"})

    assert (
        response.status_code == 200
        and "An order cannot go from new to completed." in response.content.decode()
    )
    order.refresh_from_db()
    assert order.status == "new" and not LogEntry.objects.exists()


@pytest.mark.parametrize(
    "data", [{"status": "lost", "reason": "x"}, {"status": "cancelled", "reason": ""}, {}]
)
def test_bad_transition_input_is_a_form_error(admin_client, order, item, data):
    response = admin_client.post(transition_url(order), data)

    assert response.status_code == 200 and response.context["form"].errors
    order.refresh_from_db()
    assert order.status == "new" and Item.objects.get(pk=item.pk).stock_quantity == 6


def test_order_moves_need_the_change_permission(staff_client, client, order):
    assert (
        staff_client("view_formsubmission")
        .post(transition_url(order), {"status": "cancelled", "reason": "x"})
        .status_code
        == 403
    )
    admin_login(client, UserFactory())
    assert client.post(transition_url(order), {"status": "cancelled", "reason": "x"}).status_code == 302
    order.refresh_from_db()
    assert order.status == "new"


@pytest.mark.django_db(transaction=True)
def test_concurrent_cancels_from_two_staff_members_restock_once():
    # given an order of 4 of an item of 10, and two staff members on its page
    shop = make_shop()
    item = make_item(shop, stock=10)
    order = place_order(make_form(shop), [(item, 4)])
    clients = []
    for _ in range(2):
        client = Client()
        admin_login(client, UserFactory(is_staff=True, is_superuser=True))
        clients.append(client)

    # when both press "Cancel order" at once
    results = run_in_threads(
        lambda client: (
            client.post(transition_url(order), {"status": "cancelled", "reason": "race"}).status_code
        ),
        [(client,) for client in clients],
    )

    # then one cancels (302), the other gets the error page (200), and the stock came back once
    assert sorted(results) == [200, 302]
    item.refresh_from_db()
    assert item.stock_quantity == 10
    assert StockHistory.objects.filter(item=item, reason="cancellation").count() == 1
    assert_chain(item)
    assert len(history(order)) == 1


# -- plans -------------------------------------------------------------------------------------


def test_plan_changes_through_shop_plan_change_and_is_logged(admin_client, superuser, shop):
    page = admin_client.get(reverse("admin:shops_shop_change", args=[shop.pk])).content.decode()
    assert 'id="change-plan-link"' in page and 'name="plan"' not in page  # read-only on the shop form

    response = admin_client.post(
        plan_url(shop),
        {
            "plan": "pro",
            "plan_status": "active",
            "plan_price": "990.00",
            "billing_cycle": "yearly",
            "reason": "sales deal",
        },
    )

    assert response.status_code == 302
    shop.refresh_from_db()
    assert (shop.plan, shop.plan_price, shop.billing_cycle) == ("pro", Decimal("990.00"), "yearly")
    assert_logged(
        shop,
        by=superuser,
        contains=["plan free → pro", "billing_cycle monthly → yearly", "Reason: sales deal"],
    )


def test_shop_form_cannot_change_the_plan(admin_client, shop):
    url = reverse("admin:shops_shop_change", args=[shop.pk])
    form = admin_client.get(url).context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and k in form.fields}
    data.update(
        {
            "name": shop.name,
            "slug": shop.slug,
            "plan": "enterprise",
            "team_members-TOTAL_FORMS": "0",
            "team_members-INITIAL_FORMS": "0",
        }
    )

    admin_client.post(url, data)

    assert Shop.objects.get(pk=shop.pk).plan == "free"


@pytest.mark.parametrize(
    "data",
    [
        {
            "plan": "platinum",
            "plan_status": "active",
            "plan_price": "1",
            "billing_cycle": "monthly",
            "reason": "x",
        },
        {
            "plan": "pro",
            "plan_status": "active",
            "plan_price": "-1",
            "billing_cycle": "monthly",
            "reason": "x",
        },
        {"plan": "pro", "plan_status": "active", "plan_price": "1", "billing_cycle": "weekly", "reason": "x"},
        {"plan": "pro", "plan_status": "active", "plan_price": "1", "billing_cycle": "monthly", "reason": ""},
    ],
)
def test_bad_plan_input_is_a_form_error(admin_client, shop, data):
    response = admin_client.post(plan_url(shop), data)

    assert response.status_code == 200 and response.context["form"].errors
    assert Shop.objects.get(pk=shop.pk).plan == "free" and not LogEntry.objects.exists()


def test_plan_change_needs_the_change_permission(staff_client, shop):
    data = {
        "plan": "pro",
        "plan_status": "active",
        "plan_price": "1",
        "billing_cycle": "monthly",
        "reason": "x",
    }
    assert staff_client("view_shop").post(plan_url(shop), data).status_code == 403
    assert Shop.objects.get(pk=shop.pk).plan == "free"
