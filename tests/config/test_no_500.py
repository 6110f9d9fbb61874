"""Issue 9 §3: inputs that used to answer 500 now answer a 4xx envelope."""

import pytest
from django.db import IntegrityError
from django.urls import include, path
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from config import urls as config_urls
from tests.conftest import assert_error, client_for
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.config.test_no_500")]


class EchoView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []

    def post(self, request):
        return Response({"keys": sorted(request.data.keys())})


class IntegrityView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []

    def post(self, request):
        raise IntegrityError('duplicate key value violates unique constraint "x"')


urlpatterns = [
    path("echo", EchoView.as_view()),
    path("integrity", IntegrityView.as_view()),
    path("", include(config_urls)),
]


@pytest.mark.parametrize(
    "body",
    [
        b'{"x": NaN}',
        b'{"x": Infinity}',
        b'{"x": -Infinity}',
        b'{"x": 1e400}',
        b'{"x": [1, -1e400]}',
    ],
)
def test_the_json_parser_refuses_non_finite_numbers(api_client, body):
    response = api_client.generic("POST", "/echo", body, content_type="application/json")

    assert_error(response, 400, "parse_error")


def test_the_json_parser_still_takes_finite_numbers(api_client):
    response = api_client.generic("POST", "/echo", b'{"a": 1.5e300, "b": 2}', content_type="application/json")

    assert response.status_code == 200
    assert response.json() == {"keys": ["a", "b"]}


def test_an_integrity_error_escaping_a_view_is_a_409_envelope_and_logged(api_client, caplog):
    with caplog.at_level("ERROR", logger="config.exceptions"):
        response = api_client.post("/integrity", {}, format="json")

    assert_error(response, 409, "conflict")
    assert "IntegrityError escaped IntegrityView" in caplog.text


def test_non_finite_job_params_are_a_400():
    client = client_for(UserFactory())

    response = client.generic(
        "POST",
        "/api/jobs",
        b'{"kind": "account_batch", "params": {"x": 1e400}}',
        content_type="application/json",
    )

    assert_error(response, 400, "parse_error")


@pytest.mark.parametrize(
    "url",
    [
        "/api/jobs",
        "/api/credits/transactions",
        "/api/credits/payments",
        "/api/vault",
    ],
)
@pytest.mark.parametrize("query", ["to=9999-12-31", "from=9999-12-31", "from=0001-01-01&to=9999-12-31"])
def test_extreme_dates_on_date_filtered_lists_do_not_crash(url, query):
    client = client_for(UserFactory())

    response = client.get(f"{url}?{query}")

    assert response.status_code == 200, response.content


def test_extreme_dates_on_the_orders_list_do_not_crash():
    from tests.shops.factories import make_shop

    shop = make_shop()
    client = client_for(shop.owner)

    for query in ("to=9999-12-31", "from=9999-12-31"):
        response = client.get(f"/api/shops/{shop.pk}/orders?{query}")
        assert response.status_code == 200, response.content


@pytest.mark.parametrize("path", ["/api/stats?to=0001-01-05", "/api/stats/daily?to=0001-01-01"])
def test_a_to_date_at_the_start_of_the_calendar_is_not_a_500(path):
    response = client_for(UserFactory()).get(path)
    assert response.status_code == 200, response.content
