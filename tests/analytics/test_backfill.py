"""A fresh install shows real figures without a shell command: the release step, the nightly
task and the dashboard's first view generate every closed day that has no metrics yet."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
import time_machine
from django.core.cache import cache
from django.core.management import call_command
from django.test import Client

from accounts.models import User
from analytics.models import DailySalesMetric, PlatformMetric
from analytics.services import metrics_backfill
from analytics.tasks import backfill, generate_daily
from console.admin_site import BACKFILL_QUEUED_KEY
from tests.analytics.factories import order_at
from tests.factories import UserFactory, admin_login
from tests.shops.factories import make_item, make_shop

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 5, 20, 12, 0, tzinfo=UTC)
TODAY = NOW.date()


@pytest.fixture
def history():
    """A shop that sold 40 and 5 days ago; users that joined then (the first data: 40 days ago)."""
    with time_machine.travel(NOW, tick=False):
        shop = make_shop(timezone="Asia/Bangkok", currency="THB")
        tea = make_item(shop, stock=100, price=Decimal("100.00"))
        order_at(shop, NOW - timedelta(days=40), [(tea, 2)])
        order_at(shop, NOW - timedelta(days=5), [(tea, 1)])
        User.objects.update(date_joined=NOW - timedelta(days=40))
        yield shop


def test_a_fresh_install_gets_every_day_since_the_first_data_and_a_second_run_does_nothing(history):
    with time_machine.travel(NOW, tick=False):
        written = metrics_backfill()
        again = metrics_backfill()

    days = list(PlatformMetric.objects.order_by("date").values_list("date", flat=True))
    assert days[0] == TODAY - timedelta(days=41) and days[-1] == TODAY - timedelta(days=1)
    assert len(days) == 41 and written["platform"] == 41
    assert PlatformMetric.objects.get(date=TODAY - timedelta(days=40)).orders == 1
    assert PlatformMetric.objects.get(date=TODAY - timedelta(days=5)).orders == 1
    assert DailySalesMetric.objects.filter(shop=history, orders__gt=0).count() == 2
    assert again == {}


def test_only_the_days_after_the_newest_stored_one_are_filled(history):
    with time_machine.travel(NOW, tick=False):
        metrics_backfill()
        PlatformMetric.objects.filter(date__gte=TODAY - timedelta(days=6)).delete()

        written = metrics_backfill()

    assert written["platform"] == 6
    assert PlatformMetric.objects.get(date=TODAY - timedelta(days=5)).orders == 1


def test_an_empty_database_has_nothing_to_fill():
    with time_machine.travel(NOW, tick=False):
        assert metrics_backfill() == {}
    assert not PlatformMetric.objects.exists()


def test_the_release_steps_command_fills_the_days_and_says_so(history):
    out = StringIO()
    with time_machine.travel(NOW, tick=False):
        call_command("metrics_backfill", stdout=out)
        call_command("metrics_backfill", stdout=(second := StringIO()))

    assert "rows written: " in out.getvalue() and "platform 41" in out.getvalue()
    assert "generated already" in second.getvalue()
    assert PlatformMetric.objects.count() == 41


def test_the_nightly_task_fills_a_fresh_install_too(history):
    with time_machine.travel(NOW, tick=False):
        counts = generate_daily.apply().get()

    assert counts["platform"] == 41
    assert PlatformMetric.objects.count() == 41


def test_the_dashboards_first_view_queues_the_backfill_once_and_shows_no_command(
    history, django_capture_on_commit_callbacks
):
    staff = UserFactory(is_staff=True, is_superuser=True)
    client = Client()
    admin_login(client, staff)
    cache.delete(BACKFILL_QUEUED_KEY)

    with time_machine.travel(NOW, tick=False), django_capture_on_commit_callbacks() as queued:
        first = client.get("/admin/").content.decode()
        client.get("/admin/")

    assert len(queued) == 1  # the second view finds it queued already
    assert 'id="dash-missing-days"' in first and "being computed" in first
    assert "manage.py" not in first

    # what was queued is the backfill task, which fills the days
    with time_machine.travel(NOW, tick=False):
        backfill.apply()
    assert PlatformMetric.objects.count() == 41
