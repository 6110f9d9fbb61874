"""SocialIntegration tokens: ciphertext at rest, never shown, rotatable."""

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from django.test import Client

from shops.models import SocialIntegration
from tests.factories import UserFactory, admin_login

pytestmark = pytest.mark.django_db

ACCESS = "EAAB-very-secret-access-token-123"
REFRESH = "refresh-secret-456"
OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


def raw_tokens(pk) -> tuple[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT access_token, refresh_token FROM shops_socialintegration WHERE id = %s", [pk])
        return cursor.fetchone()


def create_via_api(auth_client, shop):
    body = {
        "provider": "facebook",
        "account_id": "page-1",
        "account_name": "My page",
        "access_token": ACCESS,
        "refresh_token": REFRESH,
    }
    return auth_client.post(f"/api/shops/{shop.pk}/integrations", body, format="json")


def test_tokens_are_stored_as_ciphertext(auth_client, shop):
    response = create_via_api(auth_client, shop)
    assert response.status_code == 201, response.content
    access, refresh = raw_tokens(response.json()["id"])
    assert ACCESS not in access and REFRESH not in refresh
    assert access.startswith("gAAAAA")  # a Fernet token
    integration = SocialIntegration.objects.get(pk=response.json()["id"])
    assert (integration.access_token, integration.refresh_token) == (ACCESS, REFRESH)


def test_no_api_response_shows_a_token(auth_client, shop, django_assert_max_num_queries):
    created = create_via_api(auth_client, shop)
    base = f"/api/shops/{shop.pk}/integrations"
    detail = auth_client.get(f"{base}/{created.json()['id']}")
    patched = auth_client.patch(
        f"{base}/{created.json()['id']}", {"access_token": "rotated-secret-789"}, format="json"
    )
    with django_assert_max_num_queries(4):
        listed = auth_client.get(base)
    for response in (created, detail, patched, listed):
        assert response.status_code in (200, 201)
        text = response.content.decode()
        for secret in (ACCESS, REFRESH, "rotated-secret-789"):
            assert secret not in text
        rows = response.json()["results"] if "results" in response.json() else [response.json()]
        for row in rows:
            assert "access_token" not in row and "refresh_token" not in row
    assert detail.json()["has_access_token"] is True
    assert SocialIntegration.objects.get().access_token == "rotated-secret-789"


def test_integration_rejects_bad_input(auth_client, shop):
    base = f"/api/shops/{shop.pk}/integrations"
    for body in (
        {"provider": "myspace", "account_id": "x"},
        {"provider": "line"},
        {"provider": "line", "account_id": "x", "access_token": "t" * 4001},
    ):
        response = auth_client.post(base, body, format="json")
        assert response.status_code == 400 and "error" in response.json()
    create_via_api(auth_client, shop)
    assert create_via_api(auth_client, shop).status_code == 400  # same account twice


def test_admin_pages_never_show_a_token(shop):
    integration = SocialIntegration.objects.create(
        shop=shop, provider="line", account_id="acc", access_token=ACCESS, refresh_token=REFRESH
    )
    admin = UserFactory(is_staff=True, is_superuser=True)
    client = Client()
    admin_login(client, admin)
    for path in (
        "/admin/shops/socialintegration/",
        f"/admin/shops/socialintegration/{integration.pk}/change/",
        "/admin/shops/socialintegration/add/",
    ):
        response = client.get(path)
        assert response.status_code == 200, path
        text = response.content.decode()
        assert ACCESS not in text and REFRESH not in text
        assert raw_tokens(integration.pk)[0] not in text
        assert 'name="access_token"' not in text


def test_rotation_keeps_old_rows_readable_and_reencrypt_tokens_moves_them(settings, shop, capsys):
    # given: a token written under the old key
    settings.FERNET_KEYS = [OLD_KEY]
    integration = SocialIntegration.objects.create(
        shop=shop, provider="line", account_id="acc", access_token=ACCESS, refresh_token=REFRESH
    )
    before = raw_tokens(integration.pk)
    # when: a new key is put in front
    settings.FERNET_KEYS = [NEW_KEY, OLD_KEY]
    # then: the old row is still readable
    assert SocialIntegration.objects.get(pk=integration.pk).access_token == ACCESS
    # and a dry run changes nothing
    call_command("reencrypt_tokens")
    assert "2 tokens under an older key" in capsys.readouterr().out
    assert raw_tokens(integration.pk) == before
    # when: re-encrypting for real
    call_command("reencrypt_tokens", "--yes")
    after = raw_tokens(integration.pk)
    assert after != before
    assert Fernet(NEW_KEY.encode()).decrypt(after[0].encode()).decode() == ACCESS
    assert Fernet(NEW_KEY.encode()).decrypt(after[1].encode()).decode() == REFRESH
    # and the old key can now be retired
    settings.FERNET_KEYS = [NEW_KEY]
    reloaded = SocialIntegration.objects.get(pk=integration.pk)
    assert (reloaded.access_token, reloaded.refresh_token) == (ACCESS, REFRESH)
    # a second run has nothing to do
    call_command("reencrypt_tokens", "--yes")
    assert "0 tokens under an older key" in capsys.readouterr().out


def test_reencrypt_refuses_when_a_key_is_missing_and_changes_nothing(settings, shop):
    from django.core.management.base import CommandError

    settings.FERNET_KEYS = [OLD_KEY]
    integration = SocialIntegration.objects.create(
        shop=shop, provider="line", account_id="acc", access_token=ACCESS
    )
    before = raw_tokens(integration.pk)
    settings.FERNET_KEYS = [NEW_KEY]
    with pytest.raises(CommandError):
        call_command("reencrypt_tokens", "--yes")
    assert raw_tokens(integration.pk) == before
