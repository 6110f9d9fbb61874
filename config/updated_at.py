"""`updated_at` moves on every write, whoever writes: a BEFORE UPDATE row trigger on every table
whose model carries an `auto_now` `updated_at` (Django's `auto_now` only runs in `Model.save()`,
so `QuerySet.update()`, `bulk_update()` and raw SQL would otherwise leave it as it was).

The trigger fires only when the statement left `updated_at` unchanged (its WHEN clause is checked
per row without calling the function): a `save()` or an UPDATE that sets `updated_at` itself (the
engine's claim, for one) keeps the value it wrote, at no cost beyond that comparison. Otherwise
the row gets `clock_timestamp()`, the time of the write (not `now()`, the start of the
transaction, which may be older than a value written earlier in the same transaction).

The triggers are registered with django-pgtrigger when the apps are ready
(`config.apps.PlatformConfig.ready`), so each app's migrations install them on its tables and a
new model with `updated_at` gets its trigger from `makemigrations` like any schema change.
"""

import pgtrigger
from django.apps import apps
from django.db import models

TRIGGER_NAME = "updated_at_moves"


def updated_at_trigger() -> pgtrigger.Trigger:
    return pgtrigger.Trigger(
        name=TRIGGER_NAME,
        when=pgtrigger.Before,
        operation=pgtrigger.Update,
        condition=pgtrigger.Condition("OLD.updated_at IS NOT DISTINCT FROM NEW.updated_at"),
        func="NEW.updated_at := clock_timestamp(); RETURN NEW;",
    )


def models_with_updated_at() -> list[type[models.Model]]:
    """The project's concrete models whose `updated_at` is an `auto_now` timestamp (third-party
    apps installed in site-packages are not ours to migrate)."""
    found = []
    for model in apps.get_models():
        if model._meta.proxy or not model._meta.managed or "site-packages" in model._meta.app_config.path:
            continue
        field = next((f for f in model._meta.concrete_fields if f.name == "updated_at"), None)
        if isinstance(field, models.DateTimeField) and field.auto_now:
            found.append(model)
    return found


def register_updated_at_triggers() -> None:
    """Register the trigger on every model of `models_with_updated_at` (idempotent)."""
    for model in models_with_updated_at():
        if not any(t.name == TRIGGER_NAME for t in getattr(model._meta, "triggers", [])):
            pgtrigger.register(updated_at_trigger())(model)
