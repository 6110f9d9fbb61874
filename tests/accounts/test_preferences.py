import pytest

from accounts.models import User, UserPreferences
from tests.conftest import assert_error, client_for

pytestmark = pytest.mark.django_db

URL = "/api/users/me/preferences"


def test_preferences_get_returns_the_defaults(auth_client):
    body = auth_client.get(URL).json()

    assert body["video_defaults"] == {"resolution": "1080p", "fps": 30, "format": "mp4"}
    assert body["notifications"]["email"] is True
    assert body["ui"] == {"theme": "system", "language": "en"}


def test_preferences_get_works_for_a_user_without_a_preferences_row(db):
    bare = User.objects.create_user("bare@example.com", "Bare-Password-91")

    response = client_for(bare).get(URL)

    assert response.status_code == 200
    assert response.json()["ui"]["theme"] == "system"


def test_preferences_patch_merges_one_section_and_keeps_the_others(auth_client, user):
    response = auth_client.patch(URL, {"video_defaults": {"fps": 60}, "ui": {"theme": "dark"}}, format="json")

    assert response.status_code == 200
    prefs = UserPreferences.objects.get(user=user)
    assert prefs.video_defaults == {"resolution": "1080p", "fps": 60, "format": "mp4"}
    assert prefs.ui == {"theme": "dark", "language": "en"}
    assert prefs.notifications["email"] is True
    assert response.json()["video_defaults"]["fps"] == 60


def test_preferences_patch_creates_the_row_when_missing(db):
    bare = User.objects.create_user("bare@example.com", "Bare-Password-91")

    response = client_for(bare).patch(URL, {"notifications": {"marketing": True}}, format="json")

    assert response.status_code == 200
    assert UserPreferences.objects.get(user=bare).notifications["marketing"] is True


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"colour": "red"}, "colour"),
        ({"ui": {"font": "big"}}, "ui.font"),
        ({"video_defaults": {"resolution": "8k"}}, "video_defaults.resolution"),
        ({"video_defaults": {"fps": 29}}, "video_defaults.fps"),
        ({"video_defaults": {"fps": "thirty"}}, "video_defaults.fps"),
        ({"notifications": {"email": "maybe"}}, "notifications.email"),
        ({"ui": {"theme": None}}, "ui.theme"),
        ({"ui": {"language": "english"}}, "ui.language"),
        ({"ui": "dark"}, "ui.non_field_errors"),
        ({"notifications": ["email"]}, "notifications.non_field_errors"),
    ],
)
def test_preferences_patch_refuses_unknown_keys_and_bad_values(auth_client, user, payload, field):
    before = UserPreferences.objects.values().get(user=user)

    response = auth_client.patch(URL, payload, format="json")

    error = assert_error(response, 400, "validation_error")
    assert field in error["fields"], error
    assert UserPreferences.objects.values().get(user=user) == before


def test_preferences_only_touch_the_callers_row(auth_client, other_user):
    auth_client.patch(URL, {"ui": {"theme": "dark"}}, format="json")

    assert UserPreferences.objects.get(user=other_user).ui["theme"] == "system"


def test_preferences_anonymous_is_a_401(api_client):
    assert_error(api_client.get(URL), 401, "not_authenticated")
    assert_error(api_client.patch(URL, {}, format="json"), 401, "not_authenticated")


def test_preferences_put_is_a_405(auth_client):
    assert_error(auth_client.put(URL, {}, format="json"), 405, "method_not_allowed")
