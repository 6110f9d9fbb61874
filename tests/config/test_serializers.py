"""Serializers keep no state across requests (issue 19): every instance builds its own fields.

The hot output serializers are plain Serializers with declared fields; they render exactly what
the ModelSerializers they replaced rendered. A per-request change to a field (its
`error_messages`, its `validators`) stays in that request, and nested and `many=True` fields
are bound to the serializer that renders them, so they read its context.
"""

import importlib
import inspect
import json
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from rest_framework import serializers
from rest_framework.relations import ManyRelatedField
from rest_framework.renderers import JSONRenderer

from accounts.models import License, Subscription, SubscriptionPlan, User
from accounts.selectors import user_get_profile
from accounts.serializers import UserSerializer
from accounts.services import subscription_activate
from credits.services import credits_grant
from jobs.file_serializers import JobFileSerializer
from jobs.models import Job, JobFile
from jobs.selectors import job_as_listed, job_list
from jobs.serializers import JobCreateInputSerializer, JobOutputSerializer
from tests.factories import UserFactory
from tests.jobs.factories import JobFactory

pytestmark = pytest.mark.django_db


# --- the output is what the ModelSerializers rendered


class ModelLicense(serializers.ModelSerializer):
    class Meta:
        model = License
        fields = ["type", "status", "date_start", "date_end"]


class ModelSubscription(serializers.ModelSerializer):
    plan = serializers.CharField(source="plan.code", read_only=True, allow_null=True)
    cancel_at_period_end = serializers.BooleanField(read_only=True)

    class Meta:
        model = Subscription
        fields = [
            "id",
            "plan",
            "tier",
            "status",
            "billing_cycle",
            "amount",
            "currency",
            "model_limit",
            "start_date",
            "end_date",
            "next_billing_date",
            "auto_renew",
            "cancelled_at",
            "cancel_at_period_end",
            "past_due_since",
        ]


class ModelUser(serializers.ModelSerializer):
    """The profile serializer as it was, fed by the profile query as it was."""

    credit_balance = serializers.SerializerMethodField()
    license = ModelLicense(read_only=True, allow_null=True)
    subscription = serializers.SerializerMethodField()
    email_verified = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = [
            "id",
            "email",
            "name",
            "phone_number",
            "organization",
            "job_title",
            "country",
            "industry",
            "tax_id",
            "billing_address",
            "tier",
            "model_limit",
            "models_used",
            "time_spent",
            "max_step_reached",
            "last_session_final_step",
            "credit_balance",
            "license",
            "subscription",
            "email_verified",
            "is_staff",
            "date_joined",
            "created_at",
        ]

    def get_credit_balance(self, user):
        balance = getattr(user, "credit_balance", None)
        return balance.balance if balance is not None else 0

    def get_email_verified(self, user):
        return user.email_verified_at is not None

    def get_subscription(self, user):
        live = [s for s in user.subscriptions.all() if s.status in Subscription.LIVE_STATUSES]
        return ModelSubscription(live[0]).data if live else None


class ModelJobFile(serializers.ModelSerializer):
    name = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = JobFile
        fields = [
            "id",
            "role",
            "name",
            "file_type",
            "original_name",
            "size",
            "sha256",
            "content_type",
            "download_url",
            "url",
            "created_at",
        ]

    def get_name(self, obj):
        from jobs.files import download_name

        return download_name(obj.original_name, obj.file_type, obj.role)

    def get_download_url(self, obj):
        from jobs.file_serializers import download_url

        return download_url(obj)

    get_url = get_download_url


class ModelJob(serializers.ModelSerializer):
    kind = serializers.CharField(source="kind.code")
    files = ModelJobFile(many=True, read_only=True, source="listed_files")
    credits_spent = serializers.IntegerField()

    class Meta:
        model = Job
        fields = list(JobOutputSerializer().fields)


def as_json(data):
    """What the client receives."""
    return json.loads(JSONRenderer().render(data))


def old_profile(user_id):
    return (
        User.objects.select_related("license", "preferences", "credit_balance")
        .prefetch_related("subscriptions__plan")
        .get(pk=user_id)
    )


def test_the_profile_renders_what_the_model_serializer_rendered():
    # given a user with a balance, a license and a live subscription, and one with none of them
    rich = UserFactory(email_verified_at=timezone.now())
    credits_grant(user=rich, amount=7, idempotency_key="profile-test")
    subscription_activate(user_id=rich.pk, plan=SubscriptionPlan.objects.get(code="premium_monthly"))
    bare = UserFactory()
    License.objects.filter(user=bare).delete()

    for user in (rich, bare):
        rendered = as_json(UserSerializer(user_get_profile(user_id=user.pk)).data)

        assert rendered == as_json(ModelUser(old_profile(user.pk)).data)
    assert UserSerializer(user_get_profile(user_id=rich.pk)).data["subscription"]["plan"] == "premium_monthly"
    assert UserSerializer(user_get_profile(user_id=bare.pk)).data["license"] is None


@pytest.mark.parametrize("subscribed", [True, False])
def test_the_profile_takes_one_query_whatever_the_user_has(django_assert_num_queries, subscribed):
    user = UserFactory()
    credits_grant(user=user, amount=3, idempotency_key="profile-queries")
    if subscribed:
        subscription_activate(user_id=user.pk, plan=SubscriptionPlan.objects.get(code="premium_monthly"))

    with django_assert_num_queries(1):
        rendered = UserSerializer(user_get_profile(user_id=user.pk)).data

    assert rendered["credit_balance"] == 3
    assert (rendered["subscription"] or {}).get("status") == ("active" if subscribed else None)


def test_a_job_renders_what_the_model_serializer_rendered():
    # given a job with files and every timestamp set, a retry of it, as job_list reads them
    now = timezone.now()
    job = JobFactory(
        params={"a": [1, "x"], "b": {"c": None}},
        result={"vertex_count": 8},
        priority=3,
        status="failed",
        error="boom",
        attempts=2,
        queued_at=now - timedelta(minutes=3),
        started_at=(now - timedelta(minutes=2)).replace(microsecond=0),
        completed_at=now,
        next_attempt_at=now + timedelta(minutes=1),
        heartbeat_at=now - timedelta(seconds=5),
    )
    retry = JobFactory(user=job.user, retry_of=job)
    files = [
        JobFile(
            job=job, role=role, prefix="models/", file_type="stl", original_name=name, size=3, sha256="0" * 64
        )
        for role, name in (("input", "in.stl"), ("output", ""), ("thumbnail", "../x<y>.png"))
    ]
    for job_file in files:
        job_file.created_at = job_file.updated_at = now
    JobFile.objects.bulk_create(files)
    listed = list(job_list(user=job.user))
    # and a just-created one (not read back) whose times are not in UTC
    created = job_as_listed(job=JobFactory())
    created.queued_at = now.astimezone(timezone.get_fixed_timezone(7 * 60))

    for instance in [*listed, created]:
        assert as_json(JobOutputSerializer(instance).data) == as_json(ModelJob(instance).data)
    rendered = as_json(JobOutputSerializer(listed, many=True).data)
    assert rendered == as_json(ModelJob(listed, many=True).data)
    assert {row["retry_of"] for row in rendered} == {None, str(job.pk)}
    assert [len(row["files"]) for row in rendered if row["id"] == str(job.pk)] == [3]
    assert str(retry.pk) in {row["id"] for row in rendered}
    assert JobOutputSerializer(created).data["queued_at"].endswith("Z")


def test_the_rendered_keys_are_the_declared_fields_in_order():
    job = job_as_listed(job=JobFactory())
    job.listed_files = [JobFile(job=job, role="output", file_type="stl", size=1, sha256="0" * 64)]

    rendered = JobOutputSerializer(job).data

    assert list(rendered) == list(JobOutputSerializer().fields)
    assert list(rendered["files"][0]) == list(JobFileSerializer().fields)


# --- no field state shared between instances


ROOT = Path(__file__).resolve().parents[2]
APPS = ("accounts", "analytics", "backups", "config", "credits", "jobs", "shops")


def our_serializer_classes() -> list[type]:
    classes = []
    paths = sorted(path for app in APPS for path in (ROOT / app).glob("*serializers.py"))
    for path in paths:
        loaded = importlib.import_module(f"{path.parent.name}.{path.stem}")
        for _, klass in inspect.getmembers(loaded, inspect.isclass):
            if not issubclass(klass, serializers.BaseSerializer) or klass.__module__ != loaded.__name__:
                continue
            if issubclass(klass, serializers.ModelSerializer) and not hasattr(klass, "Meta"):
                continue  # an abstract base (shops' StrictModelSerializer)
            classes.append(klass)
    return classes


def bound_fields(serializer):
    """Every field under `serializer`: nested serializers' fields, list children, many-related children."""
    for field in serializer.fields.values():
        yield field
        if isinstance(field, serializers.ListSerializer):
            yield field.child
            if isinstance(field.child, serializers.Serializer):
                yield from bound_fields(field.child)
        elif isinstance(field, serializers.Serializer):
            yield from bound_fields(field)
        elif isinstance(field, ManyRelatedField):
            yield field.child_relation
        elif isinstance(field, serializers.ListField | serializers.DictField):
            yield field.child


def test_every_serializer_of_ours_is_found():
    names = {klass.__name__ for klass in our_serializer_classes()}

    assert {"UserSerializer", "JobOutputSerializer", "JobFileSerializer", "BalanceSerializer"} <= names


@pytest.mark.parametrize("serializer_class", our_serializer_classes(), ids=lambda klass: klass.__name__)
def test_a_change_to_one_instances_fields_does_not_reach_the_next_instance(serializer_class):
    def refuse(value):
        raise serializers.ValidationError("leaked validator")

    # given one request that customises every field of its serializer
    first = serializer_class(context={"request": "first"})
    for field in bound_fields(first):
        field.error_messages["required"] = "leaked message"
        field.validators.append(refuse)

    # when the next request builds the same serializer
    second = serializer_class(context={"request": "second"})

    # then its fields are its own
    for field in bound_fields(second):
        assert field.error_messages.get("required") != "leaked message", field
        assert refuse not in field.validators, field
        assert field.root is second and field.context == {"request": "second"}, field


def test_a_validator_added_for_one_request_does_not_refuse_the_next_request():
    # given a request that tightens a field for itself only
    strict = JobCreateInputSerializer(data={"kind": "account_batch", "priority": 5})
    strict.fields["priority"].validators.append(
        lambda value: (_ for _ in ()).throw(serializers.ValidationError("no"))
    )
    strict.fields["priority"].error_messages["invalid"] = "leaked"
    assert not strict.is_valid()

    # then the next request validates with the declared rules and messages
    plain = JobCreateInputSerializer(data={"kind": "account_batch", "priority": 5})
    assert plain.is_valid(), plain.errors
    wrong = JobCreateInputSerializer(data={"kind": "account_batch", "priority": "high"})
    assert not wrong.is_valid()
    assert wrong.errors["priority"] == ["A valid integer is required."]


class ContextProbe(serializers.Serializer):
    """A many=True related field whose rendering depends on the renderer's context."""

    files = serializers.SlugRelatedField(many=True, read_only=True, slug_field="pk", source="listed_files")
    seen_by = serializers.SerializerMethodField()

    def get_seen_by(self, obj):
        return self.fields["files"].child_relation.context["request"]


def test_a_many_related_field_reads_the_context_of_the_serializer_rendering_it():
    job = job_as_listed(job=Job(id=uuid.uuid4()))

    first = ContextProbe(job, context={"request": "first"})
    second = ContextProbe(job, context={"request": "second"})

    assert second.data["seen_by"] == "second" and first.data["seen_by"] == "first"
    rendered = JobOutputSerializer(job_as_listed(job=JobFactory()), context={"request": "r"})
    assert rendered.fields["files"].child.context == {"request": "r"}
    assert rendered.fields["files"].child.root is rendered
