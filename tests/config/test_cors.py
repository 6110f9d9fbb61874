import pytest

pytestmark = pytest.mark.django_db

APP = "https://app.example"


@pytest.fixture(autouse=True)
def _frontend_origin(settings):
    settings.CORS_ALLOWED_ORIGINS = [APP]


def _preflight(client, origin):
    return client.options(
        "/api/users/me",
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="PATCH",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type,x-csrftoken",
    )


def test_the_configured_frontend_may_call_the_api_with_credentials(client):
    response = _preflight(client, APP)

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == APP
    assert response["Access-Control-Allow-Credentials"] == "true"
    assert "x-csrftoken" in response["Access-Control-Allow-Headers"]


def test_another_origin_gets_no_cors_grant(client):
    response = _preflight(client, "https://evil.example")

    assert "Access-Control-Allow-Origin" not in response


def test_the_frontend_may_send_an_idempotency_key_and_read_the_replay_flag(client):
    response = client.options(
        "/api/credits/purchases",
        HTTP_ORIGIN=APP,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization,content-type,idempotency-key",
    )
    answer = client.get("/api/credits/packages", HTTP_ORIGIN=APP)

    assert "idempotency-key" in response["Access-Control-Allow-Headers"]
    assert "Idempotent-Replayed" in answer["Access-Control-Expose-Headers"]
