"""Admin pages, the monthly history cleanup, the schedule entry and the demo seed."""

from datetime import timedelta

import pgtrigger
import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from config.schedules import SCHEDULES
from shops import services, tasks
from shops.models import Form, Item, PaymentMethod, Shop, StockHistory, TeamMember
from tests.conftest import client_for
from tests.factories import UserFactory, admin_login
from tests.shops.factories import assert_chain, make_form, make_item, make_member, place_order

pytestmark = pytest.mark.django_db


def test_admin_pages_render_for_every_shop_model(shop, form):
    item = make_item(shop, stock=5)
    order = place_order(form, [(item, 1)])
    services.conversation_receive_message(shop=shop, channel="line", customer_handle="U1", text="hi")
    admin = UserFactory(is_staff=True, is_superuser=True)
    client = Client()
    admin_login(client, admin)
    pages = {
        "shop": shop.pk,
        "item": item.pk,
        "formsubmission": order.pk,
        "conversation": shop.conversations.get().pk,
        "form": form.pk,
        "stockhistory": None,
        "message": None,
        "keywordreply": None,
        "savedreply": None,
        "paymentmethod": None,
        "socialintegration": None,
    }
    for model, pk in pages.items():
        assert client.get(f"/admin/shops/{model}/").status_code == 200, model
        if pk:
            response = client.get(f"/admin/shops/{model}/{pk}/change/")
            assert response.status_code == 200, model
    item_page = client.get(f"/admin/shops/item/{item.pk}/change/").content.decode()
    assert "Stock history" in item_page or "stock history" in item_page
    assert 'name="stock_quantity"' not in item_page  # stock moves only through the service


def _age(item, days_by_row: list[int]):
    """Backdate the item's history rows (oldest first) by the given numbers of days."""
    rows = list(StockHistory.objects.filter(item=item).order_by("id").values_list("id", flat=True))
    now = timezone.now()
    # Rows are append-only; backdating in a test goes around that trigger on purpose.
    with pgtrigger.ignore("shops.StockHistory:stock_history_append_only"):
        for pk, days in zip(rows, days_by_row, strict=True):
            StockHistory.objects.filter(pk=pk).update(created_at=now - timedelta(days=days))


def test_cleanup_deletes_old_history_keeps_the_chain_and_the_newest_row(shop):
    # given: one item with old and recent rows, one item whose rows are all old
    busy = make_item(shop, stock=10)
    for change in (-1, -2, 3, -4):
        services.stock_update(item=busy, change=change)
    _age(busy, [800, 700, 400, 10, 1])
    idle = make_item(shop, stock=4)
    services.stock_update(item=idle, change=-1)
    _age(idle, [900, 500])
    # when
    deleted = services.stock_history_cleanup(older_than_days=365)
    # then
    assert deleted == 3 + 1
    assert StockHistory.objects.filter(item=busy).count() == 2
    assert StockHistory.objects.filter(item=idle).count() == 1  # the newest row is always kept
    assert_chain(busy)
    assert_chain(idle)
    # and running it again deletes nothing
    assert services.stock_history_cleanup(older_than_days=365) == 0
    # and stock can still move (the new row chains onto the kept row) ...
    services.stock_update(item=idle, change=2)
    assert_chain(idle)
    # ... after which the old row is no longer the newest and goes next time (the monthly task)
    assert tasks.cleanup_stock_history() == 1
    assert_chain(idle)
    # and the task runs once a month: a second run in the same month is a recorded no-op
    assert tasks.cleanup_stock_history() is None


def test_cleanup_task_is_scheduled_monthly_at_six_on_the_first():
    entry = next(s for s in SCHEDULES if s.task == "shops.cleanup_stock_history")
    assert entry.crontab == {"minute": "0", "hour": "6", "day_of_month": "1"}
    assert tasks.cleanup_stock_history.name == "shops.cleanup_stock_history"


def test_seed_demo_shops_is_idempotent_and_gives_the_demo_user_a_shop():
    call_command("seed_demo_shops")  # no demo user yet: nothing happens
    assert not Shop.objects.exists()
    demo = UserFactory(email="demo@example.com")
    call_command("seed_demo_shops")
    call_command("seed_demo_shops")
    shop = Shop.objects.get(owner=demo)
    assert Item.objects.filter(shop=shop).count() == 4
    assert (
        Form.objects.filter(shop=shop).count() == 1 and PaymentMethod.objects.filter(shop=shop).count() == 1
    )
    for item in Item.objects.filter(shop=shop):
        assert_chain(item)


def test_seeded_form_accepts_an_order(api_client):
    UserFactory(email="demo@example.com")
    call_command("seed_demo_shops")
    form = Form.objects.get()
    body = api_client.get(f"/api/public/forms/{form.slug}").json()
    item_id = next(i["id"] for i in body["items"] if i["in_stock"])
    response = api_client.post(
        f"/api/public/forms/{form.slug}/submit",
        {
            "customer": {"name": "A", "phone": "0812345678", "address": "Bangkok"},
            "lines": [{"item_id": item_id, "quantity": 1}],
            "payment_method_id": body["payment_methods"][0]["id"],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    assert make_form  # factories module stays importable for other helpers


def test_saving_an_item_in_admin_never_overwrites_stock_moved_meanwhile(shop):
    # given: staff opened the item page, then an order took stock
    item = make_item(shop, stock=5)
    admin = UserFactory(is_staff=True, is_superuser=True)
    client = Client()
    admin_login(client, admin)
    page = client.get(f"/admin/shops/item/{item.pk}/change/")
    assert page.status_code == 200
    services.stock_update(item=item, change=-2)
    # when: the stale form is saved with a new name
    form = page.context["adminform"].form
    data = {name: form[name].value() for name in form.fields if form[name].value() is not None}
    data.update({"name": "Renamed in admin", "shop": str(shop.pk)})
    data.update({"stock_history-TOTAL_FORMS": "0", "stock_history-INITIAL_FORMS": "0"})
    response = client.post(f"/admin/shops/item/{item.pk}/change/", data)
    # then
    assert response.status_code == 302, response.content[:2000]
    item.refresh_from_db()
    assert item.name == "Renamed in admin" and item.stock_quantity == 3
    assert_chain(item)


def test_a_shop_added_in_the_admin_has_its_owner_as_owner_member_as_shop_create_gives():
    owner, helper = UserFactory(), UserFactory()
    admin = UserFactory(is_staff=True, is_superuser=True)
    client = Client()
    admin_login(client, admin)
    form = client.get("/admin/shops/shop/add/").context["adminform"].form
    data = {name: form[name].value() for name in form.fields if form[name].value() is not None}
    data.update({"name": "Added by staff", "slug": "added-by-staff", "owner": str(owner.pk)})
    # the inline lists the owner as mere staff, and a helper
    data.update(
        {
            "members-TOTAL_FORMS": "2",
            "members-INITIAL_FORMS": "0",
            "members-0-user": str(owner.pk),
            "members-0-role": "staff",
            "members-1-user": str(helper.pk),
            "members-1-role": "staff",
        }
    )

    response = client.post("/admin/shops/shop/add/", data)

    assert response.status_code == 302, response.content[:3000]
    shop = Shop.objects.get(slug="added-by-staff")
    roles = dict(TeamMember.objects.filter(shop=shop).values_list("user_id", "role"))
    assert roles == {owner.pk: "owner", helper.pk: "staff"}
    assert client_for(owner).get(f"/api/shops/{shop.pk}").json()["id"] == str(shop.pk)  # the owner sees it


def _shop_change_data(client, shop):
    """The shop's change form as the admin page fills it, with its member inline's rows."""
    page = client.get(f"/admin/shops/shop/{shop.pk}/change/")
    assert page.status_code == 200
    form = page.context["adminform"].form
    data = {name: form[name].value() for name in form.fields if form[name].value() is not None}
    (inline,) = page.context["inline_admin_formsets"]
    formset = inline.formset
    data.update({f"{formset.prefix}-{k}": v for k, v in formset.management_form.initial.items()})
    for i, member_form in enumerate(formset.forms):
        for name in member_form.fields:
            value = member_form[name].value()
            if value is not None:
                data[f"{formset.prefix}-{i}-{name}"] = str(value)
    return data, formset.prefix, len(formset.forms)


def _add_rows(data, prefix, start, users):
    for i, member in enumerate(users, start=start):
        data.update({f"{prefix}-{i}-user": str(member.pk), f"{prefix}-{i}-role": "staff"})
    data[f"{prefix}-TOTAL_FORMS"] = str(start + len(users))


def test_members_added_in_the_admin_count_against_the_shop_plan_like_invitations(shop):
    # given: a free shop (5 members at most) with its owner and 3 staff
    for _ in range(3):
        make_member(shop, "staff")
    admin = UserFactory(is_staff=True, is_superuser=True)
    client = Client()
    admin_login(client, admin)

    # when: staff add two more members on the shop's page
    data, prefix, rows = _shop_change_data(client, shop)
    _add_rows(data, prefix, rows, [UserFactory(), UserFactory()])
    response = client.post(f"/admin/shops/shop/{shop.pk}/change/", data)

    # then: the page says why and nothing is added
    assert response.status_code == 200
    assert "plan allows 5 members (4 now)" in response.content.decode()
    assert TeamMember.objects.filter(shop=shop).count() == 4

    # when: one is removed while two are added, the shop ends at its limit: accepted
    data, prefix, rows = _shop_change_data(client, shop)
    staff_row = next(i for i in range(rows) if data[f"{prefix}-{i}-role"] == "staff")
    data[f"{prefix}-{staff_row}-DELETE"] = "on"
    _add_rows(data, prefix, rows, [UserFactory(), UserFactory()])
    response = client.post(f"/admin/shops/shop/{shop.pk}/change/", data)

    assert response.status_code == 302, response.content[:3000]
    assert TeamMember.objects.filter(shop=shop).count() == 5
