"""A new staff member's first admin login in Chromium: the password, then the second factor's
enrolment (a QR code and the key an authenticator app takes), then the dashboard."""

from base64 import b32decode

import pytest
from django.contrib.auth.models import Group
from django_otp.oath import TOTP

from accounts.models import User
from tests.browser.conftest import STAFF_PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_new_staff_member_enrols_an_authenticator_and_reaches_the_dashboard(page, console, live_server):
    staff = User.objects.create_user("new-support@example.com", STAFF_PASSWORD, is_staff=True)
    staff.groups.add(Group.objects.get(name="support"))

    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", staff.email)
    page.fill("#id_password", STAFF_PASSWORD)
    page.click("#login-form input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/otp/**")

    # The enrolment page: a QR code drawn by the server and the key to type in by hand.
    assert page.locator("#otp-qr svg").is_visible()
    secret = page.locator("#otp-secret").inner_text().strip()
    # Nothing of the admin opens before the code.
    page.goto(f"{live_server.url}/admin/accounts/user/")
    page.wait_for_url(f"{live_server.url}/admin/otp/**")

    page.fill("#id_token", f"{TOTP(b32decode(secret)).token():06d}")
    page.click("#otp-submit")
    page.wait_for_url(f"{live_server.url}/admin/accounts/user/")
    assert page.locator("#changelist").is_visible()
    assert console.take() == []
