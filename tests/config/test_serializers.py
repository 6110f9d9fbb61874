"""config.serializers.FieldsBuiltOnce: the same output as DRF's own field building, built once."""

import pytest
from rest_framework import serializers

from accounts.models import SubscriptionPlan
from accounts.selectors import user_get_profile
from accounts.serializers import UserSerializer
from accounts.services import subscription_activate
from credits.services import credits_grant
from jobs.serializers import JobOutputSerializer
from tests.factories import UserFactory
from tests.jobs.factories import JobFactory

pytestmark = pytest.mark.django_db


class PlainJobOutputSerializer(JobOutputSerializer):
    """The same serializer with DRF's per-instance field building (the mixin bypassed)."""

    def get_fields(self):
        return serializers.ModelSerializer.get_fields(self)


def test_the_output_is_what_drf_builds_per_instance():
    jobs = JobFactory.create_batch(2, params={"a": [1, "x"]}, priority=3)

    for job in jobs:
        assert JobOutputSerializer(job).data == PlainJobOutputSerializer(job).data
    assert JobOutputSerializer(jobs, many=True).data == PlainJobOutputSerializer(jobs, many=True).data


def test_fields_are_built_once_per_class_and_each_instance_binds_its_own_copies():
    job = JobFactory()
    first, second = JobOutputSerializer(job), JobOutputSerializer(job)

    assert first.data == second.data
    assert JobOutputSerializer.__dict__["_fields_built_once"] is not None
    for name in ("status", "files", "kind"):
        assert first.fields[name] is not second.fields[name]
        assert first.fields[name].parent is first and second.fields[name].parent is second
        assert JobOutputSerializer._fields_built_once[name].parent is None  # the kept fields stay unbound
    assert first.fields["files"].child is not second.fields["files"].child


def test_a_serializer_given_data_validates_on_copies_and_leaves_the_kept_fields_unbound():
    assert JobOutputSerializer(JobFactory()).data["status"]  # the fields are built and kept
    kept = JobOutputSerializer._fields_built_once

    given_data = JobOutputSerializer(data={"priority": "not a number", "params": {"a": 1}})

    assert not given_data.is_valid()
    assert set(given_data.errors) >= {"priority"}
    for name, field in given_data.fields.items():
        assert field is not kept[name] and field.parent is given_data
        assert kept[name].parent is None


class PlainUserSerializer(UserSerializer):
    def get_fields(self):
        return serializers.ModelSerializer.get_fields(self)


def test_the_profile_is_what_drf_builds_per_instance():
    user = UserFactory()
    credits_grant(user=user, amount=7, idempotency_key="profile-test")
    subscription_activate(user_id=user.pk, plan=SubscriptionPlan.objects.get(code="premium_monthly"))
    profile = user_get_profile(user_id=user.pk)

    rendered = UserSerializer(profile).data

    assert rendered == PlainUserSerializer(profile).data
    assert rendered["credit_balance"] == 7 and rendered["subscription"]["plan"] == "premium_monthly"
