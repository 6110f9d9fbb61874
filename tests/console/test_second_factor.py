"""Staff pass a TOTP second factor before any admin page: enrolment (QR code and key) on the
first login, the current code on later ones; a wrong or reused code lets nobody in."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "Second-Factor-Pass-8"
NOW = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)


def code_for(device: TOTPDevice, *, step_offset: int = 0) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = totp.time + step_offset * device.step
    return f"{totp.token():06d}"


@pytest.fixture
def staff():
    return User.objects.create_superuser("boss@example.com", PASSWORD)


def password_login(client: Client, email="boss@example.com", password=PASSWORD):
    return client.post("/admin/login/?next=/admin/", {"username": email, "password": password}, follow=True)


@time_machine.travel(NOW, tick=False)
def test_a_password_alone_opens_no_admin_page_and_leads_to_enrolment(staff):
    client = Client()

    page = password_login(client)

    assert page.redirect_chain[-1][0] == "/admin/otp/?next=%2Fadmin%2F"
    html = page.content.decode()
    assert 'id="otp-qr"' in html and "<svg" in html and 'id="otp-secret"' in html
    device = TOTPDevice.objects.get(user=staff)
    assert device.confirmed is False
    pages = [
        "/admin/",
        reverse("admin:accounts_user_changelist"),
        reverse("admin:credits_payment_changelist"),
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/"), url


@time_machine.travel(NOW, tick=False)
def test_the_first_code_confirms_the_device_and_opens_the_admin(staff):
    client = Client()
    password_login(client)
    device = TOTPDevice.objects.get(user=staff)

    response = client.post("/admin/otp/?next=/admin/", {"token": code_for(device), "next": "/admin/"})

    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert TOTPDevice.objects.get(pk=device.pk).confirmed is True
    assert client.get("/admin/").status_code == 200


@time_machine.travel(NOW, tick=False)
def test_a_wrong_code_is_an_error_and_opens_nothing(staff):
    client = Client()
    password_login(client)
    device = TOTPDevice.objects.get(user=staff)
    wrong = f"{(int(code_for(device)) + 1) % 1_000_000:06d}"

    response = client.post("/admin/otp/", {"token": wrong})
    letters = client.post("/admin/otp/", {"token": "12ab56"})

    assert response.status_code == 200 and 'id="otp-error"' in response.content.decode()
    assert letters.status_code == 200 and 'id="otp-error"' in letters.content.decode()
    assert TOTPDevice.objects.get(pk=device.pk).confirmed is False
    assert client.get("/admin/").status_code == 302


def test_later_logins_ask_for_the_code_without_showing_the_key_again_and_refuse_a_reused_code(staff):
    with time_machine.travel(NOW, tick=False):
        first = Client()
        password_login(first)
        device = TOTPDevice.objects.get(user=staff)
        used = code_for(device)
        first.post("/admin/otp/", {"token": used})

        second = Client()
        page = password_login(second)
        reused = second.post("/admin/otp/", {"token": used})

    html = page.content.decode()
    assert 'id="otp-title"' in html and 'id="otp-qr"' not in html and 'id="otp-secret"' not in html
    assert reused.status_code == 200 and 'id="otp-error"' in reused.content.decode()
    assert second.get("/admin/").status_code == 302
    assert TOTPDevice.objects.filter(user=staff).count() == 1


@time_machine.travel(NOW, tick=False)
def test_the_code_page_never_redirects_off_site(staff):
    client = Client()
    password_login(client)
    device = TOTPDevice.objects.get(user=staff)

    response = client.post("/admin/otp/", {"token": code_for(device), "next": "https://evil.example/"})

    assert response.status_code == 302 and response["Location"] == "/admin/"


def test_anonymous_and_non_staff_users_are_sent_to_the_login_page():
    member = Client()
    member.force_login(UserFactory())

    for client in (Client(), member):
        response = client.get("/admin/otp/")
        assert response.status_code == 302 and response["Location"] == "/admin/login/"
    assert not TOTPDevice.objects.exists()
