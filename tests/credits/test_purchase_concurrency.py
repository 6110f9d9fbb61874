"""Twelve concurrent purchases by one user, three rounds: free and paid packages, plans, and the
webhook completing earlier ones — every answer is 2xx or 4xx (never a 500 or a deadlock), and
the money and subscription invariants hold afterwards. Lock order: docs/ARCHITECTURE.md."""

import json
import uuid
from collections import Counter

import pytest
from django.db.models import Sum
from rest_framework.test import APIClient

from accounts.models import Subscription
from config.signing import sign
from credits.models import CreditTransaction, Payment
from credits.selectors import balance_get
from tests.conftest import client_for, seed_subscription_plans
from tests.credits.conftest import run_in_threads
from tests.credits.factories import CreditPackageFactory
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "whsec_purchase_race"
ROUNDS = 3
THREADS = 12


@pytest.fixture(autouse=True)
def _secrets(settings):
    settings.PAYMENT_WEBHOOK_SECRETS = {
        **settings.PAYMENT_WEBHOOK_SECRETS,
        "promptpay": SECRET,
        "truemoney": SECRET,
    }


def _deliver(payment_id: str):
    payment = Payment.objects.get(pk=payment_id)
    body = json.dumps(
        {
            "event_id": f"evt_{uuid.uuid4().hex}",
            "type": "payment.succeeded",
            "payment_id": payment_id,
            "amount": str(payment.amount),
            "currency": payment.currency,
        }
    ).encode()
    return APIClient().generic(
        "POST",
        f"/api/webhooks/payments/{payment.provider}",
        body,
        content_type="application/json",
        HTTP_X_SIGNATURE=sign(body, SECRET),
    )


def test_three_rounds_of_twelve_concurrent_purchases_by_one_user_never_answer_500():
    # given one user, two free packages, two paid ones and the seeded plans
    seed_subscription_plans()
    user = UserFactory()
    free = [CreditPackageFactory(price=0, credits=1) for _ in range(2)]
    paid = [CreditPackageFactory(credits=10), CreditPackageFactory(credits=25, price="699.00")]
    pending = {"package": [], "plan": []}  # payments a later round's webhooks complete
    statuses: Counter = Counter()

    last_round_plans: list = []
    for round_number in range(ROUNDS):
        to_complete = pending["package"][:2] + pending["plan"][:1]
        requests = [
            ("package", {"package_id": str(free[0].id)}),
            ("package", {"package_id": str(free[0].id)}),
            ("package", {"package_id": str(free[1].id), "provider": "free"}),
            ("package", {"package_id": str(paid[0].id), "provider": "truemoney"}),
            ("package", {"package_id": str(paid[1].id), "provider": "promptpay"}),
            ("package", {"package_id": str(paid[0].id), "provider": "promptpay"}),
            ("plan", {"plan": "premium_monthly", "provider": "promptpay"}),
            ("plan", {"plan": "premium_yearly", "provider": "truemoney"}),
            ("plan", {"plan": "premium_monthly", "provider": "truemoney"}),
            *[("webhook", payment_id) for payment_id in to_complete],
        ]
        requests += [("package", {"package_id": str(paid[1].id), "provider": "truemoney"})] * (
            THREADS - len(requests)
        )

        def send(kind, data):
            if kind == "webhook":
                return kind, _deliver(data)
            path = "/api/credits/purchases" if kind == "package" else "/api/subscriptions"
            return kind, client_for(user).post(path, data, format="json")

        # when all twelve go at once
        results = run_in_threads(send, requests)

        # then each is answered, with a 2xx or a 4xx
        for result in results:
            assert not isinstance(result, BaseException), result
            kind, response = result
            assert 200 <= response.status_code < 500, (kind, response.status_code, response.content)
            statuses[(kind, response.status_code)] += 1
            body = response.json()
            if kind == "plan" and round_number == ROUNDS - 1:
                last_round_plans.append((response.status_code, body.get("error", {}).get("code")))
            if response.status_code == 201 and body["status"] == "pending":
                pending[kind].append(body["id"])
        pending = {kind: [p for p in ids if p not in to_complete] for kind, ids in pending.items()}

    # the free packages were each granted once, completed payments granted once each
    free_grants = Payment.objects.filter(user=user, provider="free", status="completed").count()
    assert free_grants == 2 and statuses[("package", 409)] >= 2 * ROUNDS
    purchased = CreditTransaction.objects.filter(user=user, type="purchase")
    completed_packages = Payment.objects.filter(user=user, status="completed", package__isnull=False)
    assert purchased.count() == completed_packages.count()
    assert purchased.aggregate(s=Sum("amount"))["s"] == completed_packages.aggregate(s=Sum("credits"))["s"]
    assert balance_get(user=user) == purchased.aggregate(s=Sum("amount"))["s"]
    # the plan payments the webhooks completed run one live subscription, which then refuses more
    assert Subscription.objects.filter(user=user, status__in=Subscription.LIVE_STATUSES).count() == 1
    # (round 2 completed a plan payment, so every plan purchase of round 3 is refused)
    assert last_round_plans == [(409, "already_subscribed")] * 3
    assert statuses[("webhook", 200)] == sum(n for (kind, _), n in statuses.items() if kind == "webhook")
