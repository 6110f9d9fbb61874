"""Every admin page opens in a real browser: every changelist, every add page staff may use and a
change page of every model, without a server error, a console error or an uncaught exception."""

from django.contrib import admin
from django.contrib.admin.utils import quote
from django.test import RequestFactory
from django.urls import reverse

from tests.browser.data import one_of_everything


def admins(superuser):
    request = RequestFactory().get("/admin/")
    request.user = superuser
    for model, model_admin in admin.site._registry.items():
        yield model._meta, model_admin, request


def visit(page, console, url: str, expect: str = "#content") -> list[str]:
    """Open `url`; return what went wrong (nothing when the page is fine and shows `expect`)."""
    response = page.goto(url)
    problems = console.take()
    if response is None or response.status != 200:
        problems.append(f"status {response.status if response else None}")
    elif page.locator(expect).count() != 1:
        problems.append(f"no {expect} on the page")
    return [f"{url}: {p}" for p in problems]


def test_every_changelist_and_a_change_page_of_every_model_open_cleanly(
    staff_page, console, live_server, superuser, reference_data
):
    one_of_everything()
    problems, without_rows, visited = [], [], 0

    for opts, model_admin, request in admins(superuser):
        changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        problems += visit(staff_page, console, f"{live_server.url}{changelist}", expect="#changelist")
        obj = model_admin.get_queryset(request).order_by("pk").first()
        if obj is None:
            without_rows.append(opts.label)
            continue
        change = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[quote(obj.pk)])
        problems += visit(staff_page, console, f"{live_server.url}{change}")
        visited += 2

    assert problems == []
    assert without_rows == []
    assert visited == 2 * len(admin.site._registry)


def test_every_add_page_staff_may_use_opens_cleanly(
    staff_page, console, live_server, superuser, reference_data
):
    problems, addable = [], 0

    for opts, model_admin, request in admins(superuser):
        if not model_admin.has_add_permission(request):
            continue
        addable += 1
        add = reverse(f"admin:{opts.app_label}_{opts.model_name}_add")
        problems += visit(
            staff_page, console, f"{live_server.url}{add}", expect="#content-main form input[name=_save]"
        )

    assert problems == []
    assert addable >= 20  # the business tables' add pages, not only third-party ones
