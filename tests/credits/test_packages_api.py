from decimal import Decimal

import pytest

from credits.models import CreditPackage
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db

SEEDED = [
    ("Trial Pack", 1, "0.00", 0, "0.00"),
    ("Starter Pack", 3, "99.00", 0, "33.00"),
    ("Popular Pack", 10, "299.00", 10, "29.90"),
    ("Pro Pack", 25, "699.00", 15, "27.96"),
    ("Business Pack", 50, "1299.00", 20, "25.98"),
    ("Enterprise Pack", 100, "2399.00", 25, "23.99"),
]


def test_migration_seeds_the_six_thb_packages_of_the_spec():
    rows = list(
        CreditPackage.objects.order_by("sort_order").values_list(
            "name", "credits", "price", "discount_percent", "currency"
        )
    )
    assert rows == [(n, c, Decimal(p), d, "THB") for n, c, p, d, _ in SEEDED]


def test_packages_are_public_and_show_price_per_credit(api_client, django_assert_max_num_queries):
    with django_assert_max_num_queries(2):
        response = api_client.get("/api/credits/packages")

    assert response.status_code == 200
    results = response.json()["results"]
    assert [
        (r["name"], r["credits"], r["price"], r["discount_percent"], r["price_per_credit"]) for r in results
    ] == list(SEEDED)
    assert results[0]["is_free"] is True and results[1]["is_free"] is False
    assert all(r["currency"] == "THB" for r in results)


def test_packages_answer_with_trailing_slash_too(api_client):
    assert api_client.get("/api/credits/packages/").status_code == 200


def test_inactive_packages_are_not_listed(api_client):
    CreditPackage.objects.filter(name="Pro Pack").update(is_active=False)

    names = [r["name"] for r in api_client.get("/api/credits/packages").json()["results"]]

    assert "Pro Pack" not in names and len(names) == 5


def test_packages_bad_page_is_a_404_envelope(api_client):
    assert_error(api_client.get("/api/credits/packages?page=abc"), 404, "not_found")


def test_packages_list_refuses_writes(api_client, auth_client):
    assert_error(
        auth_client.post("/api/credits/packages", {"name": "x"}, format="json"), 405, "method_not_allowed"
    )
