"""The one exception handler: whatever is raised, the client sees the error envelope."""

import pytest
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.urls import path
from rest_framework import generics, serializers
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from config import urls as config_urls
from config.exceptions import ApplicationError, Conflict, Forbidden, InvalidTransition, NotFound
from config.parsers import LimitedJSONParser
from tests.conftest import assert_error
from tests.factories import UserFactory

pytestmark = pytest.mark.urls("tests.config.test_envelope")

RAISES = {
    "application": ApplicationError(
        "No money.", code="insufficient_credits", status_code=402, extra={"needed": 3}
    ),
    "not-found": NotFound("No such job."),
    "conflict": Conflict("Busy."),
    "transition": InvalidTransition("Cannot go from completed to queued."),
    "forbidden": Forbidden("Not yours."),
    "django-validation-dict": DjangoValidationError({"sku": ["Taken."]}),
    "django-validation-list": DjangoValidationError(["Bad.", "Worse."]),
    "http404": Http404("gone"),
    "django-permission": DjangoPermissionDenied(),
    "drf-validation-nested": serializers.ValidationError(
        {"customer": {"email": ["Invalid."]}, "lines": [{"quantity": ["Too many."]}]}
    ),
    "drf-validation-string": serializers.ValidationError("Nope."),
    "crash": RuntimeError("boom"),
}


class RaiseView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []

    def get(self, request, kind):
        raise RAISES[kind]


class UserNameSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["email"]


class UserListView(generics.ListAPIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []
    serializer_class = UserNameSerializer

    def get_queryset(self):
        return User.objects.order_by("email")


class EchoView(APIView):
    """Parses as an upload endpoint does (JSON, and multipart for files, like POST /api/jobs); the
    project's default is JSON alone, and form-urlencoded is parsed nowhere."""

    parser_classes = [LimitedJSONParser, MultiPartParser]
    permission_classes = [AllowAny]
    authentication_classes: list = []

    def post(self, request):
        return Response({"keys": sorted(request.data.keys())})


urlpatterns = [
    path("echo", EchoView.as_view()),
    path("raise/<str:kind>", RaiseView.as_view()),
    path("users", UserListView.as_view()),
]
# The same handlers the project's urlconf declares (checked below).
handler404 = config_urls.handler404
handler500 = config_urls.handler500


@pytest.mark.parametrize(
    "kind, status, code",
    [
        ("application", 402, "insufficient_credits"),
        ("not-found", 404, "not_found"),
        ("conflict", 409, "conflict"),
        ("transition", 409, "invalid_transition"),
        ("forbidden", 403, "permission_denied"),
        ("django-validation-dict", 400, "validation_error"),
        ("django-validation-list", 400, "validation_error"),
        ("http404", 404, "not_found"),
        ("django-permission", 403, "permission_denied"),
        ("drf-validation-nested", 400, "validation_error"),
        ("drf-validation-string", 400, "validation_error"),
    ],
)
def test_every_exception_becomes_the_envelope(api_client, kind, status, code):
    assert_error(api_client.get(f"/raise/{kind}"), status, code)


def test_application_error_carries_its_extra_fields(api_client):
    assert assert_error(api_client.get("/raise/application"), 402)["needed"] == 3


def test_validation_errors_name_fields_with_dotted_paths(api_client):
    fields = assert_error(api_client.get("/raise/drf-validation-nested"), 400)["fields"]

    assert fields == {"customer.email": ["Invalid."], "lines.0.quantity": ["Too many."]}


def test_django_validation_error_keeps_its_fields(api_client):
    assert assert_error(api_client.get("/raise/django-validation-dict"), 400)["fields"] == {"sku": ["Taken."]}
    assert assert_error(api_client.get("/raise/django-validation-list"), 400)["fields"] == {
        "non_field_errors": ["Bad.", "Worse."]
    }


def test_non_validation_errors_have_no_fields_key(api_client):
    assert "fields" not in assert_error(api_client.get("/raise/conflict"), 409)


def test_the_project_urlconf_uses_the_json_error_handlers():
    assert config_urls.handler404 == "config.exceptions.json_404"
    assert config_urls.handler500 == "config.exceptions.json_500"
    assert config_urls.handler400 == "config.exceptions.json_400"
    assert config_urls.handler403 == "config.exceptions.json_403"


def test_an_unexpected_crash_is_a_500_envelope_without_details(client):
    client.raise_request_exception = False

    response = client.get("/raise/crash")

    error = assert_error(response, 500, "server_error")
    assert "boom" not in response.content.decode()
    assert error["message"]


def test_an_unacceptable_accept_header_is_a_406_envelope(api_client):
    assert_error(api_client.get("/raise/conflict", HTTP_ACCEPT="application/xml"), 406, "not_acceptable")


@pytest.mark.django_db
def test_list_pages_hold_at_most_100_rows(api_client):
    UserFactory.create_batch(105)

    body = api_client.get("/users", {"page_size": 1000}).json()

    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 105 and len(body["results"]) == 100
    assert body["next"] and body["previous"] is None


@pytest.mark.django_db
def test_default_page_size_is_20_and_page_size_is_honoured(api_client):
    UserFactory.create_batch(25)

    assert len(api_client.get("/users").json()["results"]) == 20
    assert len(api_client.get("/users", {"page_size": 5, "page": 2}).json()["results"]) == 5


@pytest.mark.django_db
@pytest.mark.parametrize("page", ["999", "0", "abc", "-1"])
def test_a_page_out_of_range_or_garbage_is_a_404_envelope(api_client, page):
    UserFactory()

    assert_error(api_client.get("/users", {"page": page}), 404, "not_found")


@pytest.mark.django_db
@pytest.mark.parametrize("size", ["abc", "-5", "0", "1e9"])
def test_a_garbage_page_size_is_a_400_envelope(api_client, size):
    UserFactory.create_batch(3)

    response = api_client.get("/users", {"page_size": size})

    assert_error(response, 400, "validation_error")
    assert list(response.json()["error"]["fields"]) == ["page_size"]


OVER_LIMIT = 1024 * 1024 + 10


@pytest.mark.parametrize(
    "body, content_type",
    [
        (b'{"a": "' + b"x" * OVER_LIMIT + b'"}', "application/json"),
        (
            b'--b\r\nContent-Disposition: form-data; name="a"\r\n\r\n' + b"x" * OVER_LIMIT + b"\r\n--b--\r\n",
            "multipart/form-data; boundary=b",
        ),
    ],
)
def test_bodies_over_one_megabyte_are_a_400_envelope_whatever_the_parser(api_client, body, content_type):
    response = api_client.post("/echo", data=body, content_type=content_type)

    assert response.status_code == 400
    assert set(response.json()) == {"error"}


@pytest.mark.parametrize(
    "body, content_type",
    [
        (b'{"a": 1}', "application/json"),
        (
            b'--b\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--b--\r\n',
            "multipart/form-data; boundary=b",
        ),
    ],
)
def test_small_bodies_still_parse(api_client, body, content_type):
    assert api_client.post("/echo", data=body, content_type=content_type).json() == {"keys": ["a"]}


def test_a_form_urlencoded_body_is_a_415_envelope(api_client):
    response = api_client.post("/echo", data=b"a=1", content_type="application/x-www-form-urlencoded")

    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


def test_too_many_form_fields_is_a_400_envelope(api_client):
    body = (
        b"".join(
            f'--b\r\nContent-Disposition: form-data; name="f{i}"\r\n\r\n1\r\n'.encode() for i in range(1100)
        )
        + b"--b--\r\n"
    )

    response = api_client.post("/echo", data=body, content_type="multipart/form-data; boundary=b")

    assert response.status_code == 400
    assert set(response.json()) == {"error"}
