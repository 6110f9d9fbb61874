"""No admin page writes a state-machine field, stock or money directly, and deleting an order, a
payment, a ledger row or a job is not offered.

The test walks every model registered on the admin site (and each one's inlines) as a superuser
would see it: a protected field is never an editable field of its add or change form, nor of
its list's inline editing; the models whose rows must not disappear offer no delete (nor the
"delete selected" action)."""

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.utils import flatten_fieldsets
from django.test import RequestFactory

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

# Field names that hold a state machine's status, a plan, stock or money, wherever they appear.
PROTECTED_NAMES = {
    "status",
    "plan_status",
    "type",
    "tier",
    "model_limit",
    "models_used",
    "balance",
    "balance_after",
    "stock_quantity",
    "amount",
    "refunded_amount",
    "credits",
    "credits_charged",
    "credits_refunded",
    "credits_clawed_back",
    "refund_shortfall",
    "plan",
    "plan_price",
    "total",
}

# Models where one of those names is not a state, stock or money, and may be edited: why.
EDITABLE_BY_DESIGN = {
    # Catalogue rows: what a future purchase costs, not money that moved.
    ("credits.creditpackage", "credits"),
    ("accounts.subscriptionplan", "model_limit"),
    ("accounts.subscriptionplan", "tier"),
    # A conversation is opened/closed by staff answering it (no effect attached).
    ("shops.conversation", "status"),
    # Kinds of catalogue rows, not states.
    ("shops.item", "type"),
    ("shops.paymentmethod", "type"),
    ("jobs.jobkind", "type"),
    ("shops.socialintegration", "status"),
}

# Rows whose deletion would lose money, stock or history: no delete offered, to anyone.
NO_DELETE = {
    "accounts.user",
    "accounts.license",
    "accounts.subscription",
    "credits.payment",
    "credits.paymentevent",
    "credits.credittransaction",
    "credits.creditbalance",
    "credits.webhooklog",
    "jobs.job",
    "shops.formsubmission",
    "shops.shop",
    "shops.stockhistory",
    "backups.backuplog",
    "platform.scheduledrun",
}


def registered():
    for model in apps.get_models():
        if admin.site.is_registered(model):
            yield model, admin.site.get_model_admin(model)


def superuser_request(path="/admin/"):
    request = RequestFactory().get(path)
    request.user = UserFactory(is_staff=True, is_superuser=True)
    return request


def editable_fields(model_admin, request, obj) -> set[str]:
    """What the add (obj None) or change form lets the user type into."""
    if obj is None and not model_admin.has_add_permission(request):
        return set()
    if obj is not None and not model_admin.has_change_permission(request, obj):
        return set()
    fields = set(flatten_fieldsets(model_admin.get_fieldsets(request, obj)))
    return fields - set(model_admin.get_readonly_fields(request, obj))


def inline_editable_fields(model_admin, request, obj) -> dict[str, set[str]]:
    out = {}
    for inline in model_admin.get_inline_instances(request, obj):
        writable = inline.has_add_permission(request, obj) or inline.has_change_permission(request, obj)
        if writable:
            fields = set(flatten_fieldsets(inline.get_fieldsets(request, obj)))
            out[inline.model._meta.label_lower] = fields - set(inline.get_readonly_fields(request, obj))
    return out


def protected(label: str, names) -> set[str]:
    return {name for name in names if name in PROTECTED_NAMES and (label, name) not in EDITABLE_BY_DESIGN}


def test_every_registered_admin_keeps_state_stock_and_money_fields_read_only():
    request = superuser_request()
    offenders = []
    for model, model_admin in registered():
        label = model._meta.label_lower
        for obj in (None, model()):
            if bad := protected(label, editable_fields(model_admin, request, obj)):
                offenders.append((label, "add" if obj is None else "change", sorted(bad)))
            for inline_label, fields in inline_editable_fields(model_admin, request, obj).items():
                if bad := protected(inline_label, fields):
                    offenders.append((f"{label} inline {inline_label}", "form", sorted(bad)))
        if bad := protected(label, model_admin.list_editable):
            offenders.append((label, "list_editable", sorted(bad)))

    assert offenders == []


def test_rows_that_hold_money_stock_or_history_offer_no_delete_even_to_superusers():
    request = superuser_request()
    offering = []
    seen = set()
    for model, model_admin in registered():
        label = model._meta.label_lower
        if label not in NO_DELETE:
            continue
        seen.add(label)
        if model_admin.has_delete_permission(request) or model_admin.has_delete_permission(request, model()):
            offering.append((label, "delete permission"))
        if "delete_selected" in model_admin.get_actions(request):
            offering.append((label, "delete_selected action"))

    assert offering == []
    assert seen == NO_DELETE  # each of them is registered (a typo here would hide a model)


def test_the_order_page_offers_its_moves_above_the_form_and_no_delete_link(admin_client):
    from django.urls import reverse

    from tests.shops.factories import make_form, make_item, make_shop, place_order

    shop = make_shop()
    order = place_order(make_form(shop), [(make_item(shop, stock=5), 2)])

    page = admin_client.get(reverse("admin:shops_formsubmission_change", args=[order.pk])).content.decode()

    assert page.index('id="order-operations"') < page.index('name="_save"')
    assert reverse("admin:shops_formsubmission_delete", args=[order.pk]) not in page
    assert admin_client.post(reverse("admin:shops_formsubmission_delete", args=[order.pk])).status_code == 403
