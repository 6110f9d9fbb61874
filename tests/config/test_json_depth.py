"""Issue 19 §6: JSON nested deeper than JSON_MAX_DEPTH (64) is a 400 wherever the API takes
JSON — request bodies, JSON carried in form fields, cursors — and what is allowed renders."""

import json
from urllib.parse import urlencode

import pytest
from django.urls import reverse

from analytics.models import ErrorLog
from config.parsers import JSON_MAX_DEPTH, json_loads
from credits.services import credits_grant
from jobs.models import Job
from tests.conftest import assert_error, client_for

pytestmark = pytest.mark.django_db


def nested(depth: int, leaf=1):
    """`depth` levels of arrays around `leaf` (depth 1 is `[leaf]`)."""
    for _ in range(depth):
        leaf = [leaf]
    return leaf


def nested_text(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


def test_json_loads_takes_the_limit_and_refuses_one_level_more():
    assert json_loads(nested_text(JSON_MAX_DEPTH)) == nested(JSON_MAX_DEPTH)
    with pytest.raises(ValueError, match="nested deeper"):
        json_loads(nested_text(JSON_MAX_DEPTH + 1))
    with pytest.raises(ValueError, match="nested deeper"):
        json_loads(nested_text(100_000))  # past the interpreter's stack: no RecursionError
    with pytest.raises(ValueError, match="nested deeper"):
        json_loads('{"a": ' * 65 + "1" + "}" * 65)


@pytest.mark.parametrize("depth", [JSON_MAX_DEPTH, 900, 100_000])
def test_an_anonymous_error_report_nested_deeper_than_the_limit_is_a_400_and_not_stored(api_client, depth):
    # The body is one level (the report object) around context, so context may hold 63.
    body = '{"message": "boom", "context": {"deep": ' + nested_text(depth - 1) + "}}"

    response = api_client.generic("POST", "/api/errors", body, content_type="application/json")

    assert_error(response, 400, "parse_error")
    assert not ErrorLog.objects.exists()


def test_an_error_report_at_the_depth_limit_is_stored_and_its_admin_page_renders(api_client, client):
    from tests.factories import UserFactory, admin_login

    # {"message", "context": {"deep": [[…]]}}: the body object, context, then 62 arrays = 64 levels.
    body = json.dumps({"message": "boom", "context": {"deep": nested(JSON_MAX_DEPTH - 2)}})
    response = api_client.generic("POST", "/api/errors", body, content_type="application/json")
    assert response.status_code == 201, response.content
    log = ErrorLog.objects.get()
    admin_login(client, UserFactory(is_staff=True, is_superuser=True))

    page = client.get(reverse("admin:analytics_errorlog_change", args=[log.pk]))

    assert page.status_code == 200
    assert b"boom" in page.content


BAD_PARAMS = {
    "nan": '{"x": NaN}',
    "infinity": '{"x": Infinity}',
    "minus-infinity": '{"x": -Infinity}',
    "overflow": '{"x": 1e400}',
    "too-deep": '{"x": ' + nested_text(JSON_MAX_DEPTH) + "}",
    "past-the-stack": '{"x": ' + nested_text(50_000) + "}",
}


@pytest.mark.parametrize("params", BAD_PARAMS.values(), ids=BAD_PARAMS.keys())
def test_job_params_in_a_multipart_body_refuse_what_json_bodies_refuse(user, params):
    data = {"kind": "account_batch", "params": params}

    response = client_for(user).post("/api/jobs", data, format="multipart")

    error = assert_error(response, 400, "validation_error")
    assert "params" in error["fields"]
    assert not Job.objects.exists()


def test_a_form_urlencoded_job_body_is_refused_as_an_unsupported_media_type(user):
    # The schema declares JSON (and multipart for the file): nothing else is parsed.
    data = {"kind": "account_batch", "params": "{}"}

    response = client_for(user).generic(
        "POST", "/api/jobs", urlencode(data), content_type="application/x-www-form-urlencoded"
    )

    assert_error(response, 415, "unsupported_media_type")
    assert not Job.objects.exists()


def test_job_params_in_a_form_body_at_the_depth_limit_are_taken(user):
    credits_grant(user=user, amount=1, idempotency_key="depth-limit-job")
    params = json.dumps({"x": nested(JSON_MAX_DEPTH - 1)})

    response = client_for(user).post(
        "/api/jobs", {"kind": "account_batch", "params": params}, format="multipart"
    )

    assert response.status_code == 201, response.content
    assert Job.objects.get().params == json.loads(params)
