import pytest
from rest_framework.test import APIClient

from tests.factories import DEFAULT_PASSWORD

STRONG_PASSWORD = "Blue-Quartz-Meadow-71"


def register_payload(**overrides) -> dict:
    payload = {
        "email": "new.person@example.com",
        "password": STRONG_PASSWORD,
        "password_confirm": STRONG_PASSWORD,
        "name": "New Person",
        "phone_number": "+66 81 234 5678",
        "organization": "Acme",
        "job_title": "Engineer",
        "country": "TH",
        "industry": "Media",
    }
    payload.update(overrides)
    return payload


def login(client: APIClient, email: str, password: str = DEFAULT_PASSWORD):
    return client.post("/api/auth/token", {"email": email, "password": password}, format="json")


@pytest.fixture
def tokens(api_client, user) -> dict:
    """A fresh access/refresh pair for `user`, obtained through the login endpoint."""
    response = login(api_client, user.email)
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def cookie_client(user) -> APIClient:
    """A browser-like client: logged in through the API, authenticated only by its cookies,
    with CSRF checks enforced (APIClient skips them unless told otherwise)."""
    client = APIClient(enforce_csrf_checks=True)
    response = login(client, user.email)
    assert response.status_code == 200, response.content
    return client
