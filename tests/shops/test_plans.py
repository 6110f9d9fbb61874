"""Shop plans: bought by the owner through the payment path, activated by the signed webhook,
renewed daily with past-due grace and expiry to free, and the limits they set (items, members,
forms, outbound messages per month) enforced with 403 `plan_limit` and shown on the shop."""

import importlib
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.apps import apps
from django.db import connection

from accounts.models import add_months
from config.models import ScheduledRun
from credits.models import Payment
from shops import services
from shops.models import Item, Message, Role, ShopPlan, ShopPlanPayment, ShopSubscription, TeamMember
from shops.services.invitations import invitation_create
from shops.services.plans import shop_plan_purchase_start, shop_plans_expire, shop_plans_renew
from shops.tasks import renew_plans
from tests.conftest import assert_error, client_for
from tests.credits.conftest import run_in_threads
from tests.credits.test_subscriptions import SECRET, deliver
from tests.factories import UserFactory
from tests.shops.factories import make_form, make_item, make_member, make_shop

NOW = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)


def seed_shop_plans() -> None:
    """Put back the plans the shops data migration seeds (transactional tests flush them)."""
    importlib.import_module("shops.migrations.0013_seed_shop_plans").seed(apps, None)


@pytest.fixture(autouse=True)
def _secrets(settings):
    settings.PAYMENT_WEBHOOK_SECRETS = {
        **settings.PAYMENT_WEBHOOK_SECRETS,
        "promptpay": SECRET,
        "truemoney": SECRET,
    }


@pytest.fixture
def shop(db):
    return make_shop()


@pytest.fixture
def owner_client(shop):
    return client_for(shop.owner)


def plan_url(shop) -> str:
    return f"/api/shops/{shop.pk}/plan"


def set_free_limits(**limits) -> None:
    ShopPlan.objects.filter(code="free").update(**limits)


def buy(shop, plan="pro", cycle="monthly", provider="promptpay") -> ShopSubscription:
    """The shop on a paid, active plan, through the real purchase and webhook path."""
    payment = shop_plan_purchase_start(
        shop=shop,
        user=shop.owner,
        plan=ShopPlan.objects.get(code=plan),
        billing_cycle=cycle,
        provider=provider,
    )
    assert deliver(payment).status_code == 200
    return ShopSubscription.objects.get(shop=shop, status__in=ShopSubscription.LIVE_STATUSES)


def plan_details(client, shop) -> dict:
    response = client.get(f"/api/shops/{shop.pk}")
    assert response.status_code == 200, response.content
    return response.json()["plan_details"]


# -- plans and purchase ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_plans_are_seeded_in_thb_and_listed_publicly(api_client):
    response = api_client.get("/api/shop-plans")
    assert response.status_code == 200
    plans = {p["code"]: p for p in response.json()["results"]}
    assert list(plans) == ["free", "basic", "pro", "enterprise"]
    assert plans["pro"]["price_monthly"] == "990.00" and plans["pro"]["currency"] == "THB"
    assert plans["enterprise"]["limits"]["max_items"] is None  # unlimited
    assert plans["free"]["limits"] == {
        "max_items": 100,
        "max_members": 5,
        "max_forms": 10,
        "max_outbound_messages_per_month": 1000,
    }


@pytest.mark.django_db
def test_a_new_shop_is_on_the_free_plan_with_its_limits_and_usage_shown(owner_client, shop):
    make_item(shop)
    details = plan_details(owner_client, shop)
    assert details["code"] == "free" and details["status"] == "active"
    assert details["current_period_end"] is None and details["billing_cycle"] is None
    assert details["limits"]["max_items"] == 100
    assert details["usage"] == {"items": 1, "members": 1, "forms": 0, "outbound_messages_this_month": 0}


@pytest.mark.django_db
def test_owner_buys_a_plan_and_the_signed_webhook_activates_it(owner_client, shop):
    # when the owner buys pro, yearly
    response = owner_client.post(
        plan_url(shop), {"plan": "pro", "billing_cycle": "yearly", "provider": "promptpay"}, format="json"
    )
    # then a pending payment with the provider's checkout, and the shop is still free
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "pending" and body["amount"] == "9900.00" and body["currency"] == "THB"
    assert body["checkout"]
    payment = Payment.objects.get(pk=body["id"])
    assert body["purpose"] == "shop_plan" and payment.user == shop.owner and payment.credits == 0
    assert plan_details(owner_client, shop)["code"] == "free"

    # when the provider's signed webhook reports success (twice: a redelivery)
    assert deliver(payment, event_id="evt_shop_1").status_code == 200
    assert deliver(payment, event_id="evt_shop_1").json()["status"] == "duplicate"

    # then the shop is on pro for a year, once
    payment.refresh_from_db()
    sub = ShopSubscription.objects.get(shop=shop)
    assert sub.end_date == add_months(payment.completed_at, 12)
    details = plan_details(owner_client, shop)
    assert details["code"] == "pro" and details["status"] == "active" and details["billing_cycle"] == "yearly"
    assert details["current_period_end"] == sub.end_date.isoformat().replace("+00:00", "Z")
    assert details["auto_renew"] is True and details["limits"]["max_items"] == 10000
    shop.refresh_from_db()
    assert (shop.plan, shop.plan_status, shop.plan_price, shop.billing_cycle) == (
        "pro",
        "active",
        Decimal("9900.00"),
        "yearly",
    )
    assert payment.status == "completed" and payment.receipt.number.startswith("INV-")


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Role.ADMIN, Role.STAFF, Role.VIEWER])
def test_only_the_owner_may_buy_a_plan(shop, role):
    member = make_member(shop, role)
    response = client_for(member.user).post(
        plan_url(shop), {"plan": "pro", "billing_cycle": "monthly", "provider": "promptpay"}, format="json"
    )
    assert_error(response, 403)
    assert not Payment.objects.exists()


@pytest.mark.django_db
def test_another_users_shop_is_404_and_anonymous_is_401(shop, other_client, api_client):
    body = {"plan": "pro", "billing_cycle": "monthly", "provider": "promptpay"}
    assert_error(other_client.post(plan_url(shop), body, format="json"), 404)
    assert_error(other_client.get(f"/api/shops/{shop.pk}"), 404)
    assert_error(api_client.post(plan_url(shop), body, format="json"), 401)
    assert not Payment.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        {},
        {"plan": "pro", "billing_cycle": "weekly", "provider": "promptpay"},
        {"plan": "pro", "billing_cycle": "monthly", "provider": "free"},
        {"plan": "pro", "billing_cycle": "monthly"},
        {"plan": "nope", "billing_cycle": "monthly", "provider": "promptpay"},
        {"plan": "free", "billing_cycle": "monthly", "provider": "promptpay"},
        {"plan": ["pro"], "billing_cycle": "monthly", "provider": "promptpay"},
        ["pro"],
    ],
)
def test_bad_purchase_input_is_400_in_the_envelope_and_creates_nothing(owner_client, shop, body):
    assert_error(owner_client.post(plan_url(shop), body, format="json"), 400)
    assert not Payment.objects.exists()


@pytest.mark.django_db
def test_a_second_purchase_while_the_plan_renews_by_itself_is_409(owner_client, shop):
    buy(shop)
    response = owner_client.post(
        plan_url(shop), {"plan": "basic", "billing_cycle": "monthly", "provider": "promptpay"}, format="json"
    )
    assert_error(response, 409, "already_subscribed")


# -- idempotency --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_retried_purchase_answers_the_first_response_and_another_body_is_409(owner_client, shop):
    body = {"plan": "pro", "billing_cycle": "monthly", "provider": "promptpay"}
    first = owner_client.post(plan_url(shop), body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = owner_client.post(plan_url(shop), body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    other = owner_client.post(
        plan_url(shop), {**body, "billing_cycle": "yearly"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1"
    )
    assert_error(other, 409, "idempotency_key_reused")
    assert Payment.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_retries_make_one_payment():
    seed_shop_plans()
    shop = make_shop()
    body = {"plan": "basic", "billing_cycle": "monthly", "provider": "promptpay"}

    def post(_):
        return client_for(shop.owner).post(plan_url(shop), body, format="json", HTTP_IDEMPOTENCY_KEY="same")

    responses = run_in_threads(post, [(i,) for i in range(20)])
    assert all(getattr(r, "status_code", None) == 201 for r in responses), responses
    assert len({r.json()["id"] for r in responses}) == 1
    assert Payment.objects.count() == 1 and ShopPlanPayment.objects.count() == 1


# -- limits -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_items_over_the_limit_are_403_plan_limit_at_the_boundary(owner_client, shop):
    set_free_limits(max_items=2)
    make_item(shop)
    url = f"/api/shops/{shop.pk}/items"
    second = owner_client.post(url, {"sku": "B", "name": "B", "price": "1.00"}, format="json")
    assert second.status_code == 201, second.content
    third = owner_client.post(url, {"sku": "C", "name": "C", "price": "1.00"}, format="json")
    error = assert_error(third, 403, "plan_limit")
    assert "2 items" in error["message"]
    assert Item.objects.filter(shop=shop).count() == 2
    assert plan_details(owner_client, shop)["usage"]["items"] == 2


@pytest.mark.django_db
def test_forms_over_the_limit_are_403_plan_limit(owner_client, shop):
    set_free_limits(max_forms=1)
    make_form(shop)
    response = owner_client.post(f"/api/shops/{shop.pk}/forms", {"name": "Second"}, format="json")
    assert_error(response, 403, "plan_limit")
    assert shop.forms.count() == 1


@pytest.mark.django_db
def test_members_over_the_limit_cannot_be_invited_or_join(owner_client, shop):
    set_free_limits(max_members=3)
    make_member(shop, Role.STAFF)
    # an invitation sent while there was room
    invitee = UserFactory()
    invitation_create(shop=shop, email=invitee.email, role=Role.STAFF, invited_by=shop.owner)
    token = "t-" + uuid.uuid4().hex
    from shops.services.invitations import _hash

    shop.invitations.filter(email=invitee.email.lower()).update(token_hash=_hash(token))
    make_member(shop, Role.VIEWER)  # the shop is now full (3 of 3)

    refused = owner_client.post(
        f"/api/shops/{shop.pk}/members", {"email": "more@example.com", "role": "staff"}, format="json"
    )
    assert_error(refused, 403, "plan_limit")
    assert_error(client_for(invitee).post(f"/api/invitations/{token}/accept"), 403, "plan_limit")
    assert TeamMember.objects.filter(shop=shop).count() == 3
    assert shop.invitations.get(email=invitee.email.lower()).status == "pending"


def _conversation(shop):
    services.conversation_receive_message(shop=shop, channel="line", customer_handle="U1", text="hi")
    return shop.conversations.get()


@pytest.mark.django_db
def test_staff_replies_over_the_monthly_limit_are_403_and_nothing_is_stored_or_delivered(shop):
    set_free_limits(max_outbound_messages_per_month=2)
    with time_machine.travel(NOW, tick=False):
        owner_client = client_for(shop.owner)
        conversation = _conversation(shop)
        path = f"/api/shops/{shop.pk}/conversations/{conversation.pk}/messages"
        assert owner_client.post(path, {"text": "one"}, format="json").status_code == 201
        assert owner_client.post(path, {"text": "two"}, format="json").status_code == 201
        assert_error(owner_client.post(path, {"text": "three"}, format="json"), 403, "plan_limit")
        assert not Message.objects.filter(text="three").exists()
        assert plan_details(owner_client, shop)["usage"]["outbound_messages_this_month"] == 2
    # the next calendar month (UTC) starts a new allowance
    with time_machine.travel(datetime(2026, 12, 1, 0, 0, tzinfo=UTC), tick=False):
        owner_client = client_for(shop.owner)
        assert owner_client.post(path, {"text": "december"}, format="json").status_code == 201


@pytest.mark.django_db
def test_a_keyword_reply_over_the_limit_is_recorded_failed_and_never_delivered(auth_client, shop):
    set_free_limits(max_outbound_messages_per_month=1)
    shop.keyword_replies.create(keywords=["price"], match="contains", reply="100 THB")
    inbound = f"/api/shops/{shop.pk}/conversations/inbound"
    client = client_for(shop.owner)
    first = client.post(
        inbound, {"channel": "line", "customer_handle": "U1", "text": "price?"}, format="json"
    )
    assert first.json()["auto_reply"]["delivery_status"] == "pending"
    second = client.post(
        inbound, {"channel": "line", "customer_handle": "U1", "text": "price!"}, format="json"
    )
    assert second.status_code == 201, second.content
    reply = second.json()["auto_reply"]
    assert reply["sender"] == "bot" and reply["delivery_status"] == "failed"
    assert reply["error"].startswith("plan_limit")
    # not delivered (the task and the connectors' feed take pending messages only), not counted
    assert Message.objects.filter(sender="bot", delivery_status="pending").count() == 1
    assert plan_details(client, shop)["usage"]["outbound_messages_this_month"] == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_item_creations_at_the_limit_never_pass_it():
    seed_shop_plans()
    set_free_limits(max_items=3)
    shop = make_shop()
    make_item(shop)

    def create(n):
        try:
            return services.item_create(shop=shop, sku=f"T-{n}", name=f"T {n}", price=Decimal("1.00"))
        finally:
            connection.close()

    results = run_in_threads(create, [(n,) for n in range(12)])
    created = [r for r in results if isinstance(r, Item)]
    refused = [r for r in results if getattr(r, "code", None) == "plan_limit"]
    assert len(created) == 2 and len(refused) == 10, results
    assert Item.objects.filter(shop=shop).count() == 3


# -- renewal, past due, expiry, downgrade ---------------------------------------------------------


@pytest.mark.django_db
def test_renewal_opens_one_pending_payment_per_period_and_its_success_extends_the_period(shop):
    with time_machine.travel(NOW, tick=False):
        sub = buy(shop, provider="truemoney")
    due = datetime(2026, 12, 10, 10, 0, tzinfo=UTC)
    with time_machine.travel(due, tick=False):
        assert shop_plans_renew() == {"renewals": 1, "failed": 0}
        assert shop_plans_renew() == {"renewals": 0, "failed": 0}  # idempotent
        link = ShopPlanPayment.objects.get(subscription=sub, period_start=sub.end_date)
        renewal = link.payment
        assert renewal.status == "pending" and renewal.provider == "truemoney"
        assert renewal.amount == Decimal("990.00") and renewal.user == shop.owner
        deliver(renewal)
    sub.refresh_from_db()
    assert sub.status == "active" and sub.end_date == datetime(2027, 1, 10, 9, 0, tzinfo=UTC)
    assert ShopSubscription.objects.filter(shop=shop).count() == 1


@pytest.mark.django_db
def test_a_failed_renewal_is_past_due_for_three_days_then_expired_to_free_keeping_the_data(shop):
    with time_machine.travel(NOW, tick=False):
        sub = buy(shop)
    set_free_limits(max_items=2)
    for _ in range(4):
        make_item(shop)
    failed_at = datetime(2026, 12, 10, 10, 0, tzinfo=UTC)
    with time_machine.travel(failed_at, tick=False):
        shop_plans_renew()
        renewal = ShopPlanPayment.objects.get(subscription=sub, period_start__isnull=False).payment
        deliver(renewal, "payment.failed", failure_reason="card declined")
    sub.refresh_from_db()
    shop.refresh_from_db()
    assert sub.status == "past_due" and sub.past_due_since == failed_at
    assert shop.plan == "pro" and shop.plan_status == "past_due"  # grace: still pro
    make_item(shop)  # pro's limits still apply

    with time_machine.travel(failed_at + timedelta(days=2, hours=23), tick=False):
        assert shop_plans_expire() == 0
    with time_machine.travel(failed_at + timedelta(days=3), tick=False):
        assert shop_plans_expire() == 1
        assert shop_plans_expire() == 0

    sub.refresh_from_db()
    shop.refresh_from_db()
    assert sub.status == "expired" and (shop.plan, shop.plan_price) == ("free", Decimal("0.00"))
    # the downgrade keeps the five items but refuses a sixth
    assert Item.objects.filter(shop=shop).count() == 5
    with pytest.raises(Exception) as refused:
        make_item(shop)
    assert getattr(refused.value, "code", None) == "plan_limit"


@pytest.mark.django_db
def test_paying_during_the_grace_period_reactivates_from_the_old_anchor(shop):
    with time_machine.travel(NOW, tick=False):
        sub = buy(shop)
    with time_machine.travel(datetime(2026, 12, 10, 10, 0, tzinfo=UTC), tick=False):
        shop_plans_renew()
        renewal = ShopPlanPayment.objects.get(subscription=sub, period_start__isnull=False).payment
        deliver(renewal, "payment.failed")
    with time_machine.travel(datetime(2026, 12, 12, 10, 0, tzinfo=UTC), tick=False):
        assert deliver(renewal).status_code == 200  # paid after all, within the grace
    sub.refresh_from_db()
    assert sub.status == "active" and sub.end_date == datetime(2027, 1, 10, 9, 0, tzinfo=UTC)


@pytest.mark.django_db
def test_the_daily_task_records_its_run_once_per_day(shop):
    with time_machine.travel(NOW, tick=False):
        buy(shop)
    with time_machine.travel(datetime(2026, 12, 10, 10, 0, tzinfo=UTC), tick=False):
        assert renew_plans() == {"renewals": 1, "failed": 0, "reminded": 0, "expired": 0}
        assert renew_plans() is None
    run = ScheduledRun.objects.get(task="shops.renew_plans")
    assert run.counts == {"renewals": 1, "failed": 0, "reminded": 0, "expired": 0}


@pytest.mark.django_db
def test_the_status_is_written_only_by_the_transition_service(shop):
    sub = buy(shop)
    from django.db import DatabaseError, transaction

    with pytest.raises(DatabaseError), transaction.atomic():
        ShopSubscription.objects.filter(pk=sub.pk).update(status="expired")


@pytest.mark.django_db
def test_cancelling_stops_renewal_and_the_plan_ends_to_free_at_its_period_end(shop):
    with time_machine.travel(NOW, tick=False):
        sub = buy(shop)
        staff = make_member(shop, Role.ADMIN)
        assert_error(client_for(staff.user).post(f"/api/shops/{shop.pk}/plan/cancel"), 403)
        response = client_for(shop.owner).post(f"/api/shops/{shop.pk}/plan/cancel")
        assert response.status_code == 200, response.content
        details = response.json()["plan_details"]
        assert details["code"] == "pro" and details["auto_renew"] is False
    with time_machine.travel(sub.end_date, tick=False):
        assert shop_plans_renew() == {"renewals": 0, "failed": 0}
        assert shop_plans_expire() == 1
    shop.refresh_from_db()
    assert shop.plan == "free" and not ShopPlanPayment.objects.filter(period_start__isnull=False).exists()


@pytest.mark.django_db(transaction=True)
def test_two_plan_payments_completing_concurrently_give_one_subscription_two_periods_long():
    # given two pending payments for the shop's plan (both opened before either completed)
    seed_shop_plans()
    shop = make_shop()
    pro = ShopPlan.objects.get(code="pro")
    with time_machine.travel(NOW, tick=False):
        payments = [
            shop_plan_purchase_start(
                shop=shop, user=shop.owner, plan=pro, billing_cycle="monthly", provider="promptpay"
            )
            for _ in range(2)
        ]

        # when the provider confirms both at the same moment
        responses = run_in_threads(deliver, [(p,) for p in payments])

    # then both applied (no deadlock, no second live subscription): one plan, two months long
    assert [getattr(r, "status_code", r) for r in responses] == [200, 200]
    sub = ShopSubscription.objects.get(shop=shop)
    assert sub.status == "active" and sub.end_date == datetime(2027, 1, 10, 9, 0, tzinfo=UTC)
    assert Payment.objects.filter(status="completed").count() == 2


@pytest.mark.django_db
def test_a_payment_completing_after_its_shop_was_deleted_completes_and_activates_nothing(shop):
    payment = shop_plan_purchase_start(
        shop=shop,
        user=shop.owner,
        plan=ShopPlan.objects.get(code="pro"),
        billing_cycle="monthly",
        provider="promptpay",
    )
    services.shop_delete(shop=shop)
    assert deliver(payment).status_code == 200
    payment.refresh_from_db()
    assert payment.status == "completed" and not ShopSubscription.objects.exists()
