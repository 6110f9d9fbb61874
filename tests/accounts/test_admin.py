import re

import pytest
from django.test import Client
from django.urls import reverse

from accounts import services
from accounts.models import (
    API_KEY_SCOPES,
    License,
    ServiceApiKey,
    Subscription,
    SubscriptionPlan,
    User,
    UserPreferences,
)
from tests.factories import UserFactory, admin_login

pytestmark = pytest.mark.django_db

ADMIN_PASSWORD = "Admin-Console-Pass-7"


@pytest.fixture
def superuser():
    return User.objects.create_superuser("root@example.com", ADMIN_PASSWORD)


@pytest.fixture
def admin_client(superuser):
    client = Client()
    admin_login(client, superuser)
    return client


@pytest.fixture
def populated():
    """One row of every accounts model."""
    user = UserFactory(name="Listed Person")
    services.subscription_activate(user_id=user.pk, plan=SubscriptionPlan.objects.get(code="premium_monthly"))
    api_key, key = services.api_key_create(name="render-worker", scopes=["jobs:write"])
    return {"user": user, "api_key": api_key, "key": key}


def test_admin_login_page_renders_and_logs_in(superuser):
    client = Client()
    assert client.get("/admin/login/").status_code == 200

    response = client.post(
        "/admin/login/?next=/admin/", {"username": "root@example.com", "password": ADMIN_PASSWORD}
    )

    # The password alone opens no admin page: the second factor comes first (tests/console).
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.get("/admin/", follow=True).redirect_chain[-1][0] == "/admin/otp/?next=%2Fadmin%2F"


def test_admin_login_refuses_a_wrong_password(superuser):
    response = Client().post("/admin/login/", {"username": "root@example.com", "password": "nope"})

    assert response.status_code == 200
    assert b"errornote" in response.content


MODELS = [User, License, Subscription, SubscriptionPlan, UserPreferences, ServiceApiKey]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_admin_changelist_renders_with_search_and_filters(admin_client, populated, model):
    url = reverse(f"admin:accounts_{model._meta.model_name}_changelist")

    assert admin_client.get(url).status_code == 200
    assert admin_client.get(url, {"q": "example"}).status_code == 200


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_admin_change_page_renders(admin_client, populated, model):
    obj = model.objects.first()
    url = reverse(f"admin:accounts_{model._meta.model_name}_change", args=[obj.pk])

    assert admin_client.get(url).status_code == 200


ADDED_BY_SERVICES = [License, Subscription]  # created with the user / by a payment, never typed in


@pytest.mark.parametrize("model", [m for m in MODELS if m not in ADDED_BY_SERVICES], ids=lambda m: m.__name__)
def test_admin_add_page_renders(admin_client, model):
    url = reverse(f"admin:accounts_{model._meta.model_name}_add")

    assert admin_client.get(url).status_code == 200


@pytest.mark.parametrize("model", ADDED_BY_SERVICES, ids=lambda m: m.__name__)
def test_admin_offers_no_add_page_for_rows_services_create(admin_client, model):
    url = reverse(f"admin:accounts_{model._meta.model_name}_add")

    assert admin_client.get(url).status_code == 403


def test_admin_api_key_pages_show_only_the_prefix(admin_client, populated):
    api_key, key = populated["api_key"], populated["key"]
    secret = key.split(".", 1)[1]

    listing = admin_client.get(reverse("admin:accounts_serviceapikey_changelist")).content.decode()
    detail_url = reverse("admin:accounts_serviceapikey_change", args=[api_key.pk])
    detail = admin_client.get(detail_url).content.decode()

    for page in (listing, detail):
        assert api_key.prefix in page
        assert secret not in page
        # The library's primary key is "<prefix>.<hash>", so the hash sits in link URLs and the
        # row checkbox; it must never be shown as a value on the page.
        shown = re.sub(r'(?:href|action)="[^"]*"|name="_selected_action" value="[^"]*"', "", page)
        assert api_key.hashed_key not in shown


def test_admin_user_change_page_never_shows_the_password_hash(admin_client, populated):
    user = populated["user"]

    page = admin_client.get(reverse("admin:accounts_user_change", args=[user.pk])).content.decode()

    assert user.password not in page


def test_admin_user_changelist_filters_by_tier(admin_client, populated):
    free = UserFactory(email="still.free@example.com")
    url = reverse("admin:accounts_user_changelist")

    page = admin_client.get(url, {"tier__exact": "premium"}).content.decode()

    assert populated["user"].email in page
    assert free.email not in page


def test_admin_can_add_a_user_with_a_usable_password(admin_client):
    response = admin_client.post(
        reverse("admin:accounts_user_add"),
        {
            "email": "Added@Example.com",
            "name": "Added",
            "usable_password": "true",
            "password1": "Added-By-Staff-42",
            "password2": "Added-By-Staff-42",
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    added = User.objects.get(email="added@example.com")
    assert added.check_password("Added-By-Staff-42")
    # an account made by staff has the same rows as a registered one
    assert UserPreferences.objects.filter(user=added).exists()
    assert License.objects.get(user=added).type == "trial"


def test_admin_add_user_refuses_an_email_taken_in_another_case(admin_client, populated):
    response = admin_client.post(
        reverse("admin:accounts_user_add"),
        {
            "email": populated["user"].email.upper(),
            "name": "Dup",
            "password1": "Added-By-Staff-42",
            "password2": "Added-By-Staff-42",
        },
    )

    assert response.status_code == 200
    assert User.objects.filter(email__iexact=populated["user"].email).count() == 1


def test_admin_creates_an_api_key_and_shows_it_once(admin_client):
    response = admin_client.post(
        reverse("admin:accounts_serviceapikey_add"),
        {"name": "staff-made", "scopes": ["jobs:write", "jobs:read"]},
        follow=True,
    )

    assert response.status_code == 200
    api_key = ServiceApiKey.objects.get(name="staff-made")
    assert api_key.scopes == ["jobs:write", "jobs:read"]
    page = response.content.decode()
    keys = set(re.findall(rf"{re.escape(api_key.prefix)}\.[A-Za-z0-9]{{32}}\b", page))
    assert len(keys) == 1
    key = keys.pop()
    assert page.count(key) == 1
    assert ServiceApiKey.objects.is_valid(key)
    # the next page view no longer carries it
    assert key not in admin_client.get(reverse("admin:accounts_serviceapikey_changelist")).content.decode()


def test_admin_refuses_an_api_key_with_an_unknown_scope(admin_client):
    response = admin_client.post(
        reverse("admin:accounts_serviceapikey_add"), {"name": "typo", "scopes": ["jobs:wirte"]}
    )

    assert response.status_code == 200
    assert "jobs:wirte is not one of the available choices" in response.content.decode()
    assert not ServiceApiKey.objects.filter(name="typo").exists()


def test_admin_api_key_form_lists_every_valid_scope(admin_client):
    page = admin_client.get(reverse("admin:accounts_serviceapikey_add")).content.decode()

    for scope in API_KEY_SCOPES:
        assert f'value="{scope}"' in page
