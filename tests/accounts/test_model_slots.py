"""`accounts.services.user_models_used_change`: the one writer of User.models_used."""

import re
from pathlib import Path

import pytest
from django.db import transaction

from accounts.models import User
from accounts.services import ModelLimitReached, user_models_used_change
from tests.factories import UserFactory

ROOT = Path(__file__).resolve().parents[2]
APPS = ["credits", "jobs", "shops", "analytics", "backups", "console", "config"]
WRITE = re.compile(r"""models_used\s*=|F\(\s*["']models_used["']\s*\)""")


def _models_used(user) -> int:
    return User.objects.values_list("models_used", flat=True).get(pk=user.pk)


@pytest.mark.django_db
def test_taking_slots_stops_at_the_model_limit_and_changes_nothing_when_refused():
    user = UserFactory()
    User.objects.filter(pk=user.pk).update(model_limit=3, models_used=1)
    user_models_used_change(user_id=user.pk, delta=2)
    assert _models_used(user) == 3
    with pytest.raises(ModelLimitReached) as refused, transaction.atomic():
        user_models_used_change(user_id=user.pk, delta=1)
    assert refused.value.status_code == 403 and refused.value.code == "model_limit_reached"
    assert _models_used(user) == 3


@pytest.mark.django_db
def test_giving_slots_back_never_goes_below_zero():
    user = UserFactory()
    User.objects.filter(pk=user.pk).update(models_used=1)
    user_models_used_change(user_id=user.pk, delta=-1)
    user_models_used_change(user_id=user.pk, delta=-1)
    assert _models_used(user) == 0


@pytest.mark.django_db
@pytest.mark.parametrize("delta", [0, 1.5, True])
def test_a_zero_or_non_integer_delta_is_a_programming_error(delta):
    user = UserFactory()
    with pytest.raises(ValueError):
        user_models_used_change(user_id=user.pk, delta=delta)


def test_no_module_outside_accounts_writes_models_used():
    writers = [
        str(path.relative_to(ROOT))
        for app in APPS
        if (ROOT / app).is_dir()
        for path in (ROOT / app).rglob("*.py")
        if "migrations" not in path.parts and WRITE.search(path.read_text())
    ]
    assert writers == []
