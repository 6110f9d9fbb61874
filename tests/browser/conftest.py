"""Browser tests: the admin driven in Debian's Chromium by Playwright's sync API.

The browser is the system's /usr/bin/chromium (`make test` installs it through
scripts/chromium.sh); Playwright never downloads one. The server is pytest-django's
`live_server` (a real threaded WSGI server on the test database), so every test using it is a
transactional test: rows it makes are committed where the server's threads can see them, and
flushed afterwards.
"""

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
VIEWPORT = {"width": 1366, "height": 900}
STAFF_EMAIL = "staff-browser@example.com"
STAFF_PASSWORD = "Browser-Admin-Pass-5"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture(scope="module")
def browser():
    """Chromium, for one test module.

    While Playwright's sync API is started, its asyncio loop counts as running in this thread,
    and Django refuses ORM calls from such a thread (SynchronousOnlyOperation), the test's own
    and pytest-django's flush alike. The ORM calls made here are plain synchronous ones between
    page actions, so the guard is lifted — the workaround Playwright's maintainers give
    (microsoft/playwright-pytest#29) — but only while the browser lives: module scope keeps both
    away from the rest of the suite (pytest-randomly keeps a module's tests together).
    """
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail("Chromium is missing: run `bash scripts/chromium.sh` (make test does).")
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        chromium = playwright.chromium.launch(executable_path=CHROMIUM)
        yield chromium
        chromium.close()


@dataclass
class Console:
    """What the page reported: console errors and uncaught exceptions, and every HTTP error."""

    errors: list[str] = field(default_factory=list)

    def attach(self, page) -> None:
        page.on(
            "console", lambda msg: self.errors.append(f"console: {msg.text}") if msg.type == "error" else None
        )
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on(
            "response",
            lambda response: (
                self.errors.append(f"HTTP {response.status}: {response.url}")
                if response.status >= 500
                else None
            ),
        )

    def take(self) -> list[str]:
        errors, self.errors = self.errors, []
        return errors


@pytest.fixture
def console():
    return Console()


@pytest.fixture
def page(browser, console):
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    console.attach(page)
    yield page
    context.close()


@pytest.fixture
def superuser(live_server):
    user = User.objects.create_superuser(STAFF_EMAIL, STAFF_PASSWORD, name="Browser Admin")
    TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    return user


def totp_code(device: TOTPDevice) -> str:
    """The code the staff member's authenticator app shows now. A code is accepted once: when
    this step's code was used already (a second login within 30 s), the next step's, which the
    device also accepts (its tolerance is one step)."""
    device.refresh_from_db()
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    if device.last_t is not None and device.last_t >= totp.t():
        totp.time = totp.time + device.step
    return f"{totp.token():06d}"


def log_in(page, live_server, email: str = STAFF_EMAIL, password: str = STAFF_PASSWORD) -> None:
    """Through the real admin login form and the second factor, as staff would."""
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", email)
    page.fill("#id_password", password)
    page.click("#login-form input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/otp/**")
    page.fill("#id_token", totp_code(TOTPDevice.objects.get(user__email=email, confirmed=True)))
    page.click("#otp-submit")
    page.wait_for_url(f"{live_server.url}/admin/")


@pytest.fixture
def staff_page(page, live_server, superuser):
    """A page logged in as a superuser."""
    log_in(page, live_server)
    return page


def screenshot(page, name: str) -> None:
    """With SCREENSHOTS=1 in the environment, the whole page as docs/screenshots/<name> (1366 px
    wide, the viewport); otherwise nothing, so a normal run never writes into the repository."""
    if os.environ.get("SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SCREENSHOTS / name, full_page=True)
