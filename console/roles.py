"""Staff roles: Django groups with the least privilege each job needs.

- `support` answers customers: users (profile edits, soft delete), jobs (retry, cancel), orders
  (move through their states), chat. It reads the ledger and payments to answer questions, and
  moves no money: no grant, no refund, no plan change.
- `finance` handles money: payments (refund; confirm the manual ones), credit grants, credit
  packages and plans, subscriptions (their transition actions), shop plans, exports, metrics.
- `operations` keeps the platform running: schedules (django-celery-beat), schedule runs,
  backups (start a manual one), offsite copies, snapshots, error logs (resolve), job kinds read.
- `viewer` reads every list and page of the project's own apps and changes nothing.

Superusers are for engineers. Every role also sees the dashboard (`analytics.view_platformmetric`).

The groups are synced after every `migrate` (a `post_migrate` handler, so it also runs on the
release step and on a fresh database), idempotently: each group gets exactly its permissions,
found by app label and codename. A permission that does not exist yet (an app that adds it in a
later migration) is skipped and granted by the next sync; `finance` also gets every custom
permission declared on payments, whatever its name, so a new manual-payment permission reaches
it without editing this file.
"""

from django.db import transaction

DASHBOARD = ("analytics", "view_platformmetric")

# The project's own apps and the admin-visible third-party ones: what `viewer` reads.
VIEWER_APPS = (
    "platform",
    "accounts",
    "credits",
    "jobs",
    "shops",
    "analytics",
    "backups",
    "django_celery_beat",
)

BEAT_MODELS = ("periodictask", "crontabschedule", "intervalschedule", "solarschedule", "clockedschedule")

ROLES: dict[str, dict[str, list[str]]] = {
    "support": {
        "accounts": ["view_user", "change_user", "view_license", "view_subscription", "view_userpreferences"],
        "credits": ["view_credittransaction", "view_payment", "view_creditbalance", "view_creditaccount"],
        "jobs": ["view_job", "change_job", "view_jobkind", "view_modelexport", "view_project"],
        "shops": [
            "view_shop",
            "view_formsubmission",
            "change_formsubmission",
            "view_item",
            "view_stockhistory",
            "view_conversation",
            "change_conversation",
            "view_message",
            "view_form",
            "view_paymentmethod",
            "view_keywordreply",
            "view_savedreply",
            "add_savedreply",
            "change_savedreply",
        ],
        "analytics": ["view_platformmetric", "view_errorlog"],
    },
    "finance": {
        "accounts": [
            "view_user",
            "view_license",
            "view_subscription",
            "change_subscription",
            "view_subscriptionplan",
            "change_subscriptionplan",
        ],
        "credits": [
            "view_payment",
            "refund_payment",
            "confirm_payment",
            "view_paymentrefund",
            "view_manualpaymentrecord",
            "view_paymentevent",
            "view_webhooklog",
            "view_credittransaction",
            "view_creditbalance",
            "view_creditaccount",
            "grant_credits",
            "view_creditpackage",
            "change_creditpackage",
        ],
        "jobs": ["view_job"],
        "shops": ["view_shop", "change_shop", "view_formsubmission"],
        "analytics": [
            "view_platformmetric",
            "view_dailysalesmetric",
            "view_categorydailymetric",
            "view_productanalytics",
        ],
    },
    "operations": {
        "django_celery_beat": [
            f"{action}_{model}" for model in BEAT_MODELS for action in ("view", "add", "change")
        ],
        "platform": ["view_scheduledrun"],
        "backups": ["view_backuplog", "add_backuplog", "view_syncstatus", "view_recoverysnapshot"],
        "analytics": ["view_platformmetric", "view_errorlog", "change_errorlog"],
        "jobs": ["view_job", "view_jobkind"],
    },
    "viewer": {},  # every view_ permission of VIEWER_APPS (role_permissions)
}

# Custom permissions declared on these models go to finance whatever their codenames.
FINANCE_CUSTOM_PERMISSIONS_OF = (("credits", "payment"),)


def role_permissions(role: str):
    """The Permission rows the role holds (only those that exist now)."""
    from django.contrib.auth.models import Permission
    from django.db.models import Q

    if role == "viewer":
        query = Q(content_type__app_label__in=VIEWER_APPS, codename__startswith="view_")
        return Permission.objects.filter(query).exclude(codename="view_serviceapikey")
    query = Q(pk__in=[])
    for app_label, codenames in ROLES[role].items():
        query |= Q(content_type__app_label=app_label, codename__in=codenames)
    if role == "finance":
        for app_label, model in FINANCE_CUSTOM_PERMISSIONS_OF:
            query |= Q(content_type__app_label=app_label, content_type__model=model) & ~(
                Q(codename__startswith="add_")
                | Q(codename__startswith="change_")
                | Q(codename__startswith="delete_")
                | Q(codename__startswith="view_")
            )
    query |= Q(content_type__app_label=DASHBOARD[0], codename=DASHBOARD[1])
    return Permission.objects.filter(query)


@transaction.atomic
def staff_groups_sync() -> dict[str, int]:
    """Create the role groups if missing and give each exactly its permissions. Idempotent.
    Returns how many permissions each group holds."""
    from django.contrib.auth.models import Group

    held = {}
    for role in ROLES:
        group, _ = Group.objects.get_or_create(name=role)
        permissions = list(role_permissions(role))
        group.permissions.set(permissions)
        held[role] = len(permissions)
    return held


def sync_after_migrate(sender, **kwargs):
    """post_migrate receiver: sync once per migrate, after the last app's permissions exist."""
    from django.apps import apps

    with_models = [config for config in apps.get_app_configs() if config.models_module is not None]
    if with_models and sender.label == with_models[-1].label:
        staff_groups_sync()
