"""Inputs a schemathesis run against the OpenAPI schema found to cause 500s; each now a 4xx."""

import pytest

from credits.models import WebhookLog
from shops.models import Form
from tests.conftest import assert_error
from tests.shops.factories import make_form, make_shop

pytestmark = pytest.mark.django_db


def test_a_nul_byte_body_to_an_unconfigured_job_webhook_is_refused_and_logged(api_client):
    response = api_client.generic("POST", "/api/webhooks/jobs/zero", b"\x00", content_type="application/json")

    assert_error(response, 404, "unknown_provider")
    logged = WebhookLog.objects.get(source="jobs", provider="zero")
    assert logged.outcome == "rejected" and "\x00" not in logged.raw_body


def test_a_nul_in_free_form_json_is_a_validation_error_naming_the_field(auth_client):
    body = b'{"kind": "video_render", "params": {"x": "a\\u0000b"}}'

    response = auth_client.generic("POST", "/api/jobs", body, content_type="application/json")

    assert "params" in assert_error(response, 400, "validation_error")["fields"]
    assert auth_client.get("/api/jobs").json()["count"] == 0


@pytest.mark.parametrize(
    "body",
    [
        b'{"kind": "video_render", "params": {"a\\u0000": 1}}',
        b'{"kind": "video_render", "params": {"x": "\\ud800"}}',
    ],
)
def test_json_keys_with_nul_or_lone_surrogates_are_a_parse_error(auth_client, body):
    response = auth_client.generic("POST", "/api/jobs", body, content_type="application/json")

    assert_error(response, 400, "parse_error")
    assert auth_client.get("/api/jobs").json()["count"] == 0


def test_patching_form_fields_without_names_is_a_validation_error(user, auth_client):
    shop = make_shop(owner=user)
    form = make_form(shop)
    before = list(Form.objects.filter(pk=form.pk).values_list("fields", flat=True))

    response = auth_client.patch(
        f"/api/shops/{shop.pk}/forms/{form.pk}", {"fields": [{"label": "", "type": "text"}]}, format="json"
    )

    error = assert_error(response, 400, "validation_error")
    assert "fields" in error["fields"]
    assert list(Form.objects.filter(pk=form.pk).values_list("fields", flat=True)) == before
