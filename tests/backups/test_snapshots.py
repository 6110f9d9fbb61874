"""Recovery snapshots of a shop's catalogue: service, API (roles, tenancy, bad input), cleanup."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from backups import services
from backups.models import RecoverySnapshot
from shops.models import Item, KeywordReply, PaymentMethod, SavedReply, StockHistory
from shops.services.stock import item_delete, stock_update
from tests.conftest import assert_error, client_for
from tests.shops.factories import make_form, make_item, make_member, make_payment_method, make_shop

pytestmark = pytest.mark.django_db


def chain_holds(item) -> bool:
    history = list(StockHistory.objects.filter(item=item).order_by("id"))
    pairs = all(a.quantity_after == b.quantity_before for a, b in zip(history, history[1:], strict=False))
    return pairs and history[-1].quantity_after == Item.objects.get(pk=item.pk).stock_quantity


@pytest.fixture
def catalogue():
    shop = make_shop()
    items = [make_item(shop, stock=10), make_item(shop, stock=3)]
    make_form(shop)
    make_payment_method(shop)
    KeywordReply.objects.create(shop=shop, keywords=["price"], reply="100 baht")
    SavedReply.objects.create(shop=shop, title="Hi", text="Hello!")
    return shop, items


def test_restore_puts_the_catalogue_back_with_stock_moved_through_the_history(catalogue):
    shop, (a, b) = catalogue
    snapshot = services.snapshot_create(shop=shop, note="before the sale")
    a_name, b_pk, b_sku = a.name, b.pk, b.sku
    # when: stock moves, an item is renamed, one deleted, things added
    stock_update(item=a, change=-7)
    Item.objects.filter(pk=a.pk).update(name="Renamed", price="1.00")
    item_delete(item=b)
    extra = make_item(shop, stock=1)
    SavedReply.objects.create(shop=shop, title="New", text="added later")
    PaymentMethod.objects.filter(shop=shop).update(is_active=False)
    result = services.snapshot_restore(snapshot=snapshot)
    # then: the catalogue is back
    a.refresh_from_db()
    restored_b = Item.objects.get(pk=b_pk)
    assert (a.stock_quantity, a.name, str(a.price)) == (10, a_name, "100.00")
    assert restored_b.stock_quantity == 3 and restored_b.sku == b_sku
    assert not Item.objects.get(pk=extra.pk).is_active
    assert list(SavedReply.objects.filter(shop=shop).values_list("title", flat=True)) == ["Hi"]
    assert PaymentMethod.objects.get(shop=shop).is_active
    # stock went through the stock service: adjustment rows referencing the snapshot, chains hold
    adjustments = StockHistory.objects.filter(reason="adjustment", reference=f"snapshot:{snapshot.pk}")
    assert sorted(adjustments.values_list("change", flat=True)) == [3, 7]
    assert chain_holds(a) and chain_holds(restored_b)
    assert {c["sku"] for c in result["changes"]["stock"]} == {a.sku, b_sku}
    # a snapshot of the state before the restore was taken
    before = RecoverySnapshot.objects.get(pk=result["pre_restore_snapshot"])
    assert {i["name"] for i in before.document["items"]} >= {"Renamed"}


def test_snapshot_records_sha256_size_and_expiry(catalogue, user):
    shop, _ = catalogue
    snapshot = services.snapshot_create(shop=shop, created_by=user)
    body = services.snapshots._canonical(snapshot.document)
    import hashlib

    assert snapshot.sha256 == hashlib.sha256(body).hexdigest() and snapshot.size == len(body)
    assert timedelta(days=89, hours=23) < snapshot.expires_at - timezone.now() <= timedelta(days=90)
    assert {len(snapshot.document[k]) for k in ("forms", "payment_methods", "keyword_replies")} == {1}


def test_a_tampered_snapshot_is_refused_and_changes_nothing(catalogue):
    shop, (a, _) = catalogue
    snapshot = services.snapshot_create(shop=shop)
    RecoverySnapshot.objects.filter(pk=snapshot.pk).update(document={**snapshot.document, "items": []})
    snapshot.refresh_from_db()
    stock_update(item=a, change=-1)
    with pytest.raises(Exception, match="checksum"):
        services.snapshot_restore(snapshot=snapshot)
    assert Item.objects.get(pk=a.pk).stock_quantity == 9 and RecoverySnapshot.objects.count() == 1


def test_cleanup_deletes_only_expired_snapshots(catalogue):
    shop, _ = catalogue
    old, fresh = services.snapshot_create(shop=shop), services.snapshot_create(shop=shop)
    RecoverySnapshot.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert services.snapshot_cleanup(dry_run=True) == 1 and RecoverySnapshot.objects.count() == 2
    assert services.snapshot_cleanup() == 1
    assert list(RecoverySnapshot.objects.values_list("pk", flat=True)) == [fresh.pk]
    later = timezone.now() + timedelta(days=91)
    assert services.snapshot_cleanup(now=later) == 1


# --- API ---------------------------------------------------------------------------------------


def url(shop, snapshot=None):
    base = f"/api/shops/{shop.pk}/snapshots"
    return f"{base}/{snapshot.pk}/restore" if snapshot else base


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_owner_and_admin_create_list_and_restore(catalogue, role):
    shop, (a, _) = catalogue
    client = client_for(make_member(shop, role).user)
    created = client.post(url(shop), {"note": "weekly"}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["note"] == "weekly" and "document" not in created.json()
    stock_update(item=a, change=-2)
    listed = client.get(url(shop) + "/")
    assert listed.status_code == 200 and listed.json()["count"] == 1
    snapshot = RecoverySnapshot.objects.get(pk=created.json()["id"])
    restored = client.post(url(shop, snapshot))
    assert restored.status_code == 200, restored.content
    body = restored.json()
    assert body["snapshot"] == str(snapshot.pk)
    assert body["changes"]["stock"] == [{"item_id": str(a.pk), "sku": a.sku, "change": 2, "stock": 10}]
    assert Item.objects.get(pk=a.pk).stock_quantity == 10


@pytest.mark.parametrize("role", ["staff", "viewer"])
def test_lower_roles_are_forbidden(catalogue, role):
    shop, _ = catalogue
    snapshot = services.snapshot_create(shop=shop)
    client = client_for(make_member(shop, role).user)
    assert_error(client.get(url(shop)), 403)
    assert_error(client.post(url(shop), {}, format="json"), 403)
    assert_error(client.post(url(shop, snapshot)), 403)


def test_another_users_shop_and_snapshot_are_404(catalogue, other_client, other_user):
    shop, _ = catalogue
    snapshot = services.snapshot_create(shop=shop)
    assert_error(other_client.get(url(shop)), 404)
    assert_error(other_client.post(url(shop), {}, format="json"), 404)
    assert_error(other_client.post(url(shop, snapshot)), 404)
    # the other user's own shop cannot reach this shop's snapshot either
    own = make_shop(owner=other_user)
    assert_error(other_client.post(f"/api/shops/{own.pk}/snapshots/{snapshot.pk}/restore"), 404)
    assert RecoverySnapshot.objects.count() == 1


def test_anonymous_gets_401(catalogue, api_client):
    shop, _ = catalogue
    assert_error(api_client.get(url(shop)), 401)
    assert_error(api_client.post(url(shop), {}, format="json"), 401)


def test_bad_input_is_a_400_envelope(catalogue):
    shop, _ = catalogue
    client = client_for(shop.owner)
    assert_error(client.post(url(shop), {"note": "x" * 301}, format="json"), 400, "validation_error")
    assert_error(client.post(url(shop), {"note": ["a"]}, format="json"), 400)
    assert_error(client.post(url(shop), b"{not json", content_type="application/json"), 400)


def test_list_query_count_does_not_grow_with_snapshots(catalogue):
    shop, _ = catalogue
    client = client_for(shop.owner)
    services.snapshot_create(shop=shop)
    client.get(url(shop))  # warm: a token's first request also reads its user row
    with CaptureQueriesContext(connection) as one:
        client.get(url(shop))
    for _ in range(5):
        services.snapshot_create(shop=shop, created_by=shop.owner)
    with CaptureQueriesContext(connection) as six:
        response = client.get(url(shop))
    assert response.json()["count"] == 6
    assert len(six) == len(one) <= 6
