from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from accounts.models import License, Subscription, User, UserPreferences
from config.serializers import FieldsBuiltOnce


class RegisterInputSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=128, write_only=True, trim_whitespace=False)
    password_confirm = serializers.CharField(max_length=128, write_only=True, trim_whitespace=False)
    name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")
    phone_number = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")
    organization = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")
    job_title = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")
    country = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    industry = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")

    def validate_email(self, value):
        value = User.objects.normalize_email(value)
        if User.objects.filter(email__iexact=value).exists():
            raise serializers.ValidationError("A user with this email already exists.")
        return value

    def validate(self, attrs):
        if attrs["password"] != attrs["password_confirm"]:
            raise serializers.ValidationError({"password_confirm": ["The two passwords do not match."]})
        candidate = User(email=attrs["email"], name=attrs.get("name", ""))
        try:
            validate_password(attrs["password"], user=candidate)
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"password": list(exc.messages)}) from None
        return attrs


class LoginInputSerializer(serializers.Serializer):
    email = serializers.CharField(max_length=254)
    password = serializers.CharField(max_length=128, trim_whitespace=False)


class RefreshInputSerializer(serializers.Serializer):
    refresh = serializers.CharField(max_length=4096, required=False)


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


class LicenseSerializer(FieldsBuiltOnce, serializers.ModelSerializer):
    class Meta:
        model = License
        fields = ["type", "status", "date_start", "date_end"]
        read_only_fields = fields


class SubscriptionSerializer(FieldsBuiltOnce, serializers.ModelSerializer):
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
        read_only_fields = fields


class UserSerializer(FieldsBuiltOnce, serializers.ModelSerializer):
    """The profile as the owner sees it. Only the profile fields are writable."""

    credit_balance = serializers.SerializerMethodField()
    license = LicenseSerializer(read_only=True, allow_null=True)
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
        read_only_fields = [
            "id",
            "email",
            "tier",
            "model_limit",
            "models_used",
            "time_spent",
            "max_step_reached",
            "last_session_final_step",
            "is_staff",
            "date_joined",
            "created_at",
        ]

    def get_credit_balance(self, user) -> int:
        # The balance row belongs to the credits app; accounts reads it by its reverse name
        # only, so accounts never imports credits (apps depend one way: README, Layout).
        balance = getattr(user, "credit_balance", None)
        return balance.balance if balance is not None else 0

    def get_email_verified(self, user) -> bool:
        return user.email_verified_at is not None

    def get_subscription(self, user) -> dict | None:
        current = next(
            (
                s
                for s in user.subscriptions.all()
                if s.status in (Subscription.Status.ACTIVE, Subscription.Status.PAST_DUE)
            ),
            None,
        )
        return SubscriptionSerializer(current).data if current else None


class UserUpdateSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["name", "phone_number", "organization", "job_title", "country", "industry"]


class VideoDefaultsSerializer(serializers.Serializer):
    resolution = serializers.ChoiceField(choices=["480p", "720p", "1080p", "1440p", "2160p"], required=False)
    fps = serializers.ChoiceField(choices=[24, 25, 30, 50, 60], required=False)
    format = serializers.ChoiceField(choices=["mp4", "webm", "mov"], required=False)


class NotificationsSerializer(serializers.Serializer):
    email = serializers.BooleanField(required=False)
    push = serializers.BooleanField(required=False)
    job_finished = serializers.BooleanField(required=False)
    marketing = serializers.BooleanField(required=False)


class UISerializer(serializers.Serializer):
    theme = serializers.ChoiceField(choices=["light", "dark", "system"], required=False)
    language = serializers.RegexField(r"^[a-z]{2}(-[A-Z]{2})?$", max_length=5, required=False)


class PreferencesSerializer(serializers.ModelSerializer):
    video_defaults = VideoDefaultsSerializer(required=False)
    notifications = NotificationsSerializer(required=False)
    ui = UISerializer(required=False)

    class Meta:
        model = UserPreferences
        fields = ["video_defaults", "notifications", "ui", "updated_at"]
        read_only_fields = ["updated_at"]

    def validate(self, attrs):
        unknown = set(self.initial_data) - set(self.fields) if isinstance(self.initial_data, dict) else set()
        if unknown:
            raise serializers.ValidationError({name: ["Unknown field."] for name in sorted(unknown)})
        for section in ("video_defaults", "notifications", "ui"):
            raw = self.initial_data.get(section) if isinstance(self.initial_data, dict) else None
            if isinstance(raw, dict):
                extra = set(raw) - set(self.fields[section].fields)
                if extra:
                    raise serializers.ValidationError(
                        {f"{section}.{name}": ["Unknown setting."] for name in sorted(extra)}
                    )
        return attrs


class ProgressInputSerializer(serializers.Serializer):
    time_spent_delta = serializers.IntegerField(min_value=0, max_value=24 * 60 * 60)
    step = serializers.IntegerField(min_value=0, max_value=10_000)


class PasswordResetInputSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)


class PasswordResetConfirmInputSerializer(serializers.Serializer):
    uid = serializers.CharField(max_length=64)
    token = serializers.CharField(max_length=128)
    new_password = serializers.CharField(max_length=128, trim_whitespace=False)


class EmailVerifyInputSerializer(serializers.Serializer):
    uid = serializers.CharField(max_length=64)
    token = serializers.CharField(max_length=128)


class DetailSerializer(serializers.Serializer):
    detail = serializers.CharField()
