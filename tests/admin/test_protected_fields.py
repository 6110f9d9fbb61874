"""No admin page writes a state-machine field, stock or money directly, and deleting an order, a
payment, a ledger row, a job (or anything else whose rows hold money, stock or history) is not
offered.

One test per registered admin class (and its inlines), as a superuser would see it: a protected
field is never an editable field of its add or change form, nor of its list's inline editing;
and each class either offers no delete (nor the "delete selected" action) or is listed in
DELETABLE with why. A newly registered class fails until it is put in one of the two lists.
"""

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
    "shops.item",
    "shops.shop",
    "shops.shopsubscription",
    "shops.stockhistory",
    "backups.backuplog",
    "platform.scheduledrun",
    # Read-only lists (metrics, logs, exports, snapshots): written by services only.
    "analytics.categorydailymetric",
    "analytics.dailysalesmetric",
    "analytics.errorlog",
    "analytics.platformmetric",
    "analytics.productanalytics",
    "backups.recoverysnapshot",
    "backups.syncstatus",
    "credits.creditaccount",
    "credits.creditpackage",
    "jobs.apiusagelog",
    "jobs.jobdailystat",
    "jobs.modelexport",
    "jobs.project",
    "token_blacklist.outstandingtoken",
}

# Rows staff may delete: none holds money, stock or their history. Why, for each.
DELETABLE = {
    "accounts.serviceapikey": "revoking a service key outright",
    "accounts.subscriptionplan": "a catalogue row; one that was bought is protected by its subscriptions",
    "shops.shopplan": "a catalogue row; one that was bought is protected by its subscriptions and payments",
    "accounts.userpreferences": "display and notification settings, remade with defaults",
    "auth.group": "staff roles (re-seeded by every migrate)",
    "axes.accessattempt": "unlocking a throttled login",
    "axes.accessfailurelog": "login throttle records",
    "axes.accesslog": "login throttle records",
    "django_celery_beat.clockedschedule": "schedules (operations)",
    "django_celery_beat.crontabschedule": "schedules (operations)",
    "django_celery_beat.intervalschedule": "schedules (operations)",
    "django_celery_beat.periodictask": "schedules (operations)",
    "django_celery_beat.solarschedule": "schedules (operations)",
    "jobs.jobkind": "a catalogue row; one with jobs is protected by them (PROTECT)",
    "otp_totp.totpdevice": "a lost authenticator, so its owner enrols again",
    "shops.conversation": "chat threads (no money or stock)",
    "shops.form": "an order form; its orders keep their lines and total",
    "shops.inboundapikey": "a channel connector's binding",
    "shops.keywordreply": "chat auto-replies",
    "shops.message": "chat messages",
    "shops.paymentmethod": "a shop's payment instructions; orders keep their total",
    "shops.savedreply": "chat canned replies",
    "shops.shopinvitation": "withdrawing an invitation",
    "shops.socialintegration": "disconnecting a channel",
    "token_blacklist.blacklistedtoken": "un-revoking a refresh token",
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


REGISTERED = sorted((model._meta.label_lower for model, _ in registered()))


@pytest.mark.parametrize("label", REGISTERED)
def test_the_admin_class_keeps_state_stock_and_money_fields_read_only(label):
    model = apps.get_model(label)
    model_admin = admin.site.get_model_admin(model)
    request = superuser_request()
    offenders = []
    for obj in (None, model()):
        if bad := protected(label, editable_fields(model_admin, request, obj)):
            offenders.append(("add" if obj is None else "change", sorted(bad)))
        for inline_label, fields in inline_editable_fields(model_admin, request, obj).items():
            if bad := protected(inline_label, fields):
                offenders.append((f"inline {inline_label}", sorted(bad)))
    if bad := protected(label, model_admin.list_editable):
        offenders.append(("list_editable", sorted(bad)))

    assert offenders == []


@pytest.mark.parametrize("label", REGISTERED)
def test_the_admin_class_offers_delete_only_where_nothing_of_value_goes_with_the_row(label):
    model = apps.get_model(label)
    model_admin = admin.site.get_model_admin(model)
    request = superuser_request()
    assert (label in NO_DELETE) != (label in DELETABLE), "put the class in NO_DELETE or DELETABLE"
    offers = {
        "delete permission": model_admin.has_delete_permission(request)
        or model_admin.has_delete_permission(request, model()),
        "delete_selected action": "delete_selected" in model_admin.get_actions(request),
    }

    if label in NO_DELETE:
        assert offers == {"delete permission": False, "delete_selected action": False}
    else:
        assert offers["delete permission"], f"{label} is listed as deletable but offers no delete"


def test_the_lists_name_only_registered_classes():
    # a typo or a class since unregistered would leave a real class out of both lists
    assert (NO_DELETE | set(DELETABLE)) == set(REGISTERED)


def test_an_item_offers_no_delete_page_and_its_delete_url_is_refused(admin_client):
    from django.urls import reverse

    from shops.models import Item, StockHistory
    from tests.shops.factories import make_item, make_shop

    item = make_item(make_shop(), stock=7)
    change = reverse("admin:shops_item_change", args=[item.pk])
    delete = reverse("admin:shops_item_delete", args=[item.pk])

    page = admin_client.get(change).content.decode()
    assert delete not in page
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    changelist = admin_client.get(reverse("admin:shops_item_changelist")).content.decode()
    assert 'value="delete_selected"' not in changelist
    assert Item.objects.get(pk=item.pk).stock_quantity == 7
    assert StockHistory.objects.filter(item=item).exists()


def test_the_order_page_offers_its_moves_above_the_form_and_no_delete_link(admin_client):
    from django.urls import reverse

    from tests.shops.factories import make_form, make_item, make_shop, place_order

    shop = make_shop()
    order = place_order(make_form(shop), [(make_item(shop, stock=5), 2)])

    page = admin_client.get(reverse("admin:shops_formsubmission_change", args=[order.pk])).content.decode()

    assert page.index('id="order-operations"') < page.index('name="_save"')
    assert reverse("admin:shops_formsubmission_delete", args=[order.pk]) not in page
    assert admin_client.post(reverse("admin:shops_formsubmission_delete", args=[order.pk])).status_code == 403
