"""Staff roles (console/roles.py): the groups exist after migrate, hold least privilege, and each
role can do its job in the admin and nothing else."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django.urls import reverse
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from console.roles import ROLES, staff_groups_sync
from credits.models import CreditTransaction, Payment
from credits.services import payment_complete
from jobs import services as job_services
from shops.models import FormSubmission
from tests.credits.factories import PaymentFactory
from tests.factories import UserFactory, admin_login
from tests.jobs.conftest import give_credits
from tests.shops.factories import make_form, make_item, make_shop, place_order

pytestmark = pytest.mark.django_db


def client_as(role: str) -> Client:
    staff = UserFactory(is_staff=True)
    staff.groups.add(Group.objects.get(name=role))
    client = Client()
    admin_login(client, staff)
    return client


@pytest.fixture
def world():
    customer = UserFactory(email="customer@example.com")
    give_credits(customer, 50)
    job = job_services.job_create(user=customer, kind_code="account_batch")
    payment = payment_complete(payment=PaymentFactory(user=customer))
    shop = make_shop()
    order = place_order(make_form(shop), [(make_item(shop, stock=10), 1)])
    task = PeriodicTask.objects.create(
        name="role test", task="analytics.generate_daily", crontab=CrontabSchedule.objects.create(hour="2")
    )
    return {"customer": customer, "job": job, "payment": payment, "order": order, "task": task}


def pages(world) -> dict[str, tuple[str, str, dict]]:
    """name → (method, url, POST data) of what staff do."""
    reason = {"reason": "role test"}
    return {
        "dashboard": ("get", reverse("admin:index"), {}),
        "find user": ("get", reverse("admin:accounts_user_changelist") + "?q=customer@example.com", {}),
        "retry job form": ("get", reverse("admin:jobs_job_cancel", args=[world["job"].pk]), {}),
        "cancel order": (
            "post",
            reverse("admin:shops_formsubmission_transition", args=[world["order"].pk]),
            {"status": "cancelled", **reason},
        ),
        "grant credits": (
            "post",
            reverse("admin:credits_creditaccount_grant", args=[world["customer"].pk]),
            {"type": "bonus", "amount": 5, "token": "8c6f1f0e-0c1e-4a43-9d36-3b7b1c1e2d3f", **reason},
        ),
        "refund form": ("get", reverse("admin:credits_payment_refund", args=[world["payment"].pk]), {}),
        "payments": ("get", reverse("admin:credits_payment_changelist"), {}),
        "pause schedule": (
            "post",
            reverse("admin:django_celery_beat_periodictask_changelist"),
            {"action": "disable_tasks", "_selected_action": [world["task"].pk]},
        ),
        "start backup": ("post", reverse("admin:backups_backuplog_start"), {}),
        "backups": ("get", reverse("admin:backups_backuplog_changelist"), {}),
    }


ALLOWED = {
    "support": {"dashboard", "find user", "retry job form", "cancel order", "payments"},
    "finance": {"dashboard", "find user", "grant credits", "refund form", "payments"},
    "operations": {"dashboard", "pause schedule", "start backup", "backups"},
    "viewer": {"dashboard", "find user", "payments", "backups"},
}


def outcome(client: Client, method: str, url: str, data: dict) -> bool:
    """True when the page let the staff member in (viewed or acted), False when it refused."""
    response = getattr(client, method)(url, data)
    if response.status_code == 403:
        return False
    if method == "post" and "action" in data:
        # Django answers an action the user may not run with the list again and no change.
        return response.status_code == 302
    return response.status_code in (200, 302)


@pytest.mark.parametrize("role", sorted(ALLOWED))
def test_each_role_can_do_its_job_and_nothing_else(role, world, django_capture_on_commit_callbacks):
    client = client_as(role)

    with django_capture_on_commit_callbacks():  # a started backup is queued, not run
        allowed = {
            name for name, (method, url, data) in pages(world).items() if outcome(client, method, url, data)
        }

    assert allowed == ALLOWED[role]


def test_a_viewer_changes_nothing_anywhere(world):
    client = client_as("viewer")
    before = (
        CreditTransaction.objects.count(),
        Payment.objects.get(pk=world["payment"].pk).refunded_amount,
        FormSubmission.objects.get(pk=world["order"].pk).status,
        PeriodicTask.objects.get(pk=world["task"].pk).enabled,
    )

    for method, url, data in pages(world).values():
        getattr(client, method)(url, data)
    change = client.post(
        reverse("admin:accounts_user_change", args=[world["customer"].pk]),
        {"email": "changed@example.com", "name": "Changed"},
    )

    assert change.status_code == 403
    assert (
        CreditTransaction.objects.count(),
        Payment.objects.get(pk=world["payment"].pk).refunded_amount,
        FormSubmission.objects.get(pk=world["order"].pk).status,
        PeriodicTask.objects.get(pk=world["task"].pk).enabled,
    ) == before
    assert not Permission.objects.filter(group__name="viewer").exclude(codename__startswith="view_").exists()


def test_support_moves_no_money_and_finance_touches_no_schedule_or_backup():
    support = set(Group.objects.get(name="support").permissions.values_list("codename", flat=True))
    finance = set(Group.objects.get(name="finance").permissions.values_list("codename", flat=True))

    money = {"grant_credits", "refund_payment", "change_payment", "change_shop", "change_subscription"}
    assert not support & money
    assert {"grant_credits", "refund_payment"} <= finance
    assert not {c for c in finance if "periodictask" in c or "backuplog" in c}


def test_the_sync_is_idempotent_and_puts_back_what_was_removed():
    support = Group.objects.get(name="support")
    before = set(support.permissions.all())
    support.permissions.clear()
    support.permissions.add(Permission.objects.get(codename="refund_payment"))

    first = staff_groups_sync()
    second = staff_groups_sync()

    assert first == second and set(ROLES) == set(first)
    assert set(Group.objects.get(name="support").permissions.all()) == before
    assert Group.objects.filter(name__in=ROLES).count() == len(ROLES)


def test_finance_gets_a_payment_permission_added_later_by_its_app(django_user_model):
    from django.contrib.contenttypes.models import ContentType

    added = Permission.objects.create(
        codename="confirm_manual_payment",
        name="Can confirm a manual payment",
        content_type=ContentType.objects.get(app_label="credits", model="payment"),
    )

    staff_groups_sync()

    assert Group.objects.get(name="finance").permissions.filter(pk=added.pk).exists()
    assert not Group.objects.get(name="support").permissions.filter(pk=added.pk).exists()


@pytest.mark.parametrize("role, offered", [("finance", True), ("support", False), ("viewer", False)])
def test_the_grant_credits_button_is_offered_only_to_staff_who_may_grant(role, offered, world):
    customer = world["customer"]
    client = client_as(role)
    grant = reverse("admin:credits_creditaccount_grant", args=[customer.pk])

    user_page = client.get(reverse("admin:accounts_user_change", args=[customer.pk])).content.decode()
    accounts = client.get(reverse("admin:credits_creditaccount_changelist")).content.decode()

    assert '<strong id="user-balance">' in user_page  # the balance itself, for every role
    assert (f'href="{grant}" id="grant-credits-link"' in user_page) is offered
    assert (f'href="{grant}"' in accounts) is offered
