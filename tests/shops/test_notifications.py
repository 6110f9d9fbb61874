"""Low-stock emails reach the shop's owner and admins once per crossing."""

import pytest

from accounts.models import UserPreferences
from shops.models import Role
from shops.notifications import low_stock_notify
from shops.services import stock_update
from tests.shops.factories import make_item, make_member

pytestmark = pytest.mark.django_db


def test_crossing_the_threshold_emails_owner_and_admins_but_not_staff(shop, user, sent):
    admin = make_member(shop, Role.ADMIN).user
    make_member(shop, Role.STAFF)
    make_member(shop, Role.VIEWER)
    item = make_item(shop, stock=3, low_stock_threshold=2, sku="TEA-1", name="Jasmine tea")

    with sent.capture():
        stock_update(item=item, change=-1)
    messages = sent.wait(2)

    assert sorted(m.to[0] for m in messages) == sorted([user.email, admin.email])
    assert "TEA-1" in messages[0].body and "2 left (threshold 2)" in messages[0].body
    assert messages[0].subject == f"{shop.name}: 1 item running low"


def test_a_change_that_stays_below_or_above_the_threshold_sends_nothing(
    shop, django_capture_on_commit_callbacks
):
    low = make_item(shop, stock=2, low_stock_threshold=2)
    high = make_item(shop, stock=10, low_stock_threshold=2)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        stock_update(item=low, change=-1)
        stock_update(item=high, change=-1)

    # no crossing: neither the signal nor an email was scheduled
    assert len(callbacks) == 0


def test_members_who_turned_email_off_are_skipped(shop, user):
    UserPreferences.objects.filter(user=user).update(
        notifications={"email": False, "push": False, "job_finished": True, "marketing": False}
    )
    make_member(shop, Role.ADMIN)
    item = make_item(shop, stock=1, low_stock_threshold=2)

    # the owner opted out; only the admin is emailed
    assert low_stock_notify(shop_id=shop.pk, item_ids=[item.pk]) == 1


def test_items_of_another_shop_are_never_reported(shop, other_shop):
    foreign = make_item(other_shop, stock=1, low_stock_threshold=2)
    assert low_stock_notify(shop_id=shop.pk, item_ids=[foreign.pk]) == 0
