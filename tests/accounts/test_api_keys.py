import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import path
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import ApiKeyAuthentication, JWTCookieOrHeaderAuthentication
from accounts.models import ServiceApiKey
from accounts.permissions import IsServiceKeyWithScope, IsUserAccount
from accounts.services import api_key_create
from config.throttling import UserRateThrottle
from tests.conftest import assert_error, client_for

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.accounts.test_api_keys")]


class ServiceOnlyView(APIView):
    authentication_classes = [ApiKeyAuthentication, JWTCookieOrHeaderAuthentication]
    permission_classes = [IsServiceKeyWithScope]
    required_scope = "jobs:write"

    def post(self, request):
        return Response({"principal": str(request.user), "key": request.auth.prefix})


class UserOnlyView(APIView):
    authentication_classes = [ApiKeyAuthentication, JWTCookieOrHeaderAuthentication]
    permission_classes = [IsUserAccount]

    def get(self, request):
        return Response({"id": str(request.user.pk)})


class ThrottledServiceView(ServiceOnlyView):
    throttle_classes = [UserRateThrottle]


urlpatterns = [
    path("throttled", ThrottledServiceView.as_view()),
    path("service", ServiceOnlyView.as_view()),
    path("user-only", UserOnlyView.as_view()),
]


def _create_via_command(scopes="jobs:write") -> tuple[str, str]:
    out = io.StringIO()
    call_command("create_api_key", "--name", "render-worker", "--scopes", scopes, stdout=out)
    lines = out.getvalue().strip().splitlines()
    return lines[-1], out.getvalue()


def test_create_api_key_prints_the_key_once_and_stores_only_hash_and_prefix():
    key, output = _create_via_command()

    stored = ServiceApiKey.objects.get()
    assert output.count(key) == 1
    assert key.startswith(stored.prefix + ".")
    assert stored.name == "render-worker" and stored.scopes == ["jobs:write"]
    assert stored.hashed_key and key not in stored.hashed_key
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_serviceapikey")
        row = cursor.fetchone()
    secret_part = key.split(".", 1)[1]
    assert not any(isinstance(v, str) and secret_part in v for v in row)


def test_create_api_key_refuses_unknown_scopes():
    with pytest.raises(CommandError):
        call_command("create_api_key", "--name", "x", "--scopes", "jobs:write,root", stdout=io.StringIO())
    assert not ServiceApiKey.objects.exists()


def test_create_api_key_requires_a_scope():
    with pytest.raises(CommandError):
        call_command("create_api_key", "--name", "x", "--scopes", " , ", stdout=io.StringIO())


def test_api_key_header_authenticates_and_records_last_use(api_client):
    key, _ = _create_via_command()
    assert ServiceApiKey.objects.get().last_used_at is None

    response = api_client.post("/service", HTTP_AUTHORIZATION=f"Api-Key {key}")

    assert response.status_code == 200
    assert response.json()["principal"] == "service:render-worker"
    assert ServiceApiKey.objects.get().last_used_at is not None


def test_revoked_api_key_is_a_401(api_client):
    key, _ = _create_via_command()
    ServiceApiKey.objects.update(revoked=True)

    assert_error(
        api_client.post("/service", HTTP_AUTHORIZATION=f"Api-Key {key}"), 401, "authentication_failed"
    )


def test_expired_api_key_is_a_401(api_client):
    key, _ = _create_via_command()
    ServiceApiKey.objects.update(expiry_date=timezone.now() - timedelta(seconds=1))

    assert_error(api_client.post("/service", HTTP_AUTHORIZATION=f"Api-Key {key}"), 401)


@pytest.mark.parametrize(
    "header", ["Api-Key wrong.key", "Api-Key", "Api-Key a b", "Api-Key nodot", "Api-Key \u00e9\u00e9.x"]
)
def test_malformed_or_unknown_api_keys_are_a_401(api_client, header):
    _create_via_command()

    assert_error(api_client.post("/service", HTTP_AUTHORIZATION=header.encode().decode("latin-1")), 401)


def test_api_key_with_a_tampered_secret_is_a_401(api_client):
    key, _ = _create_via_command()
    prefix, secret = key.split(".", 1)

    assert_error(api_client.post("/service", HTTP_AUTHORIZATION=f"Api-Key {prefix}.{secret[::-1]}"), 401)


def test_api_key_without_the_required_scope_is_a_403(api_client):
    key, _ = _create_via_command(scopes="jobs:read")

    assert_error(api_client.post("/service", HTTP_AUTHORIZATION=f"Api-Key {key}"), 403, "insufficient_scope")


def test_a_user_jwt_is_not_a_service_key(user):
    assert_error(client_for(user).post("/service"), 403, "permission_denied")


def test_a_service_key_is_not_a_user_account(api_client):
    key, _ = _create_via_command()

    assert_error(api_client.get("/user-only", HTTP_AUTHORIZATION=f"Api-Key {key}"), 403)


def test_each_service_key_has_its_own_user_throttle_bucket(api_client, monkeypatch):
    # given a user rate of 2/min and two keys
    monkeypatch.setattr(
        UserRateThrottle, "THROTTLE_RATES", {**UserRateThrottle.THROTTLE_RATES, "user": "2/min"}
    )
    _, first = api_key_create(name="a", scopes=["jobs:write"])
    _, second = api_key_create(name="b", scopes=["jobs:write"])

    # when the first key uses up its budget
    for _ in range(2):
        assert api_client.post("/throttled", HTTP_AUTHORIZATION=f"Api-Key {first}").status_code == 200

    # then it is throttled, and the second key is not
    assert_error(api_client.post("/throttled", HTTP_AUTHORIZATION=f"Api-Key {first}"), 429, "throttled")
    assert api_client.post("/throttled", HTTP_AUTHORIZATION=f"Api-Key {second}").status_code == 200
