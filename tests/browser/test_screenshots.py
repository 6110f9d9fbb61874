"""Pictures of the admin for the README (docs/screenshots/), made on demand only:

    SCREENSHOTS=1 pytest tests/browser/test_screenshots.py

A normal run skips this module, so the suite never writes into the repository.
"""

import os
from pathlib import Path

import pytest
from django.urls import reverse

from shops.models import FormSubmission
from tests.browser.conftest import VIEWPORT
from tests.browser.data import one_of_everything, thirty_days_of_activity

pytestmark = pytest.mark.skipif(
    not os.environ.get("SCREENSHOTS"), reason="writes docs/screenshots/; run with SCREENSHOTS=1"
)

OUT = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def test_screenshots_of_the_dashboard_a_user_and_an_order(staff_page, console, live_server, reference_data):
    data = one_of_everything()
    thirty_days_of_activity()
    order = FormSubmission.objects.filter(shop=data["shop"], status="new").order_by("-submitted_at").first()
    pages = {
        "dashboard.png": "/admin/",
        "user.png": reverse("admin:accounts_user_change", args=[data["demo"].pk]),
        "order.png": reverse("admin:shops_formsubmission_change", args=[order.pk]),
    }
    OUT.mkdir(parents=True, exist_ok=True)

    for name, path in pages.items():
        staff_page.goto(f"{live_server.url}{path}")
        if name == "dashboard.png":  # the dashboard, without the app list below it
            bottom = staff_page.locator("#dashboard").bounding_box()
            clip = {"x": 0, "y": 0, "width": VIEWPORT["width"], "height": bottom["y"] + bottom["height"] + 16}
            staff_page.screenshot(path=OUT / name, full_page=True, clip=clip)
        else:
            staff_page.screenshot(path=OUT / name, full_page=True)

    assert console.take() == []
    assert all((OUT / name).stat().st_size > 10_000 for name in pages)
