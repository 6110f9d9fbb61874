from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from accounts.models import BillingCycle, License, Subscription, Tier, User, UserPreferences


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


# Output serializers of hot reads are plain Serializers with declared, read-only fields: DRF
# builds a ModelSerializer's fields from the model on every instantiation (about three times
# the cost of copying declared ones), and these never validate input.


class LicenseSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=License.Type.choices, read_only=True)
    status = serializers.ChoiceField(choices=License.Status.choices, read_only=True)
    date_start = serializers.DateTimeField(read_only=True)
    date_end = serializers.DateTimeField(read_only=True)


class SubscriptionSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    plan = serializers.CharField(source="plan.code", read_only=True, allow_null=True)
    tier = serializers.ChoiceField(choices=Tier.choices, read_only=True)
    status = serializers.ChoiceField(choices=Subscription.Status.choices, read_only=True)
    billing_cycle = serializers.ChoiceField(choices=BillingCycle.choices, read_only=True)
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, read_only=True)
    currency = serializers.CharField(read_only=True)
    model_limit = serializers.IntegerField(read_only=True)
    start_date = serializers.DateTimeField(read_only=True)
    end_date = serializers.DateTimeField(read_only=True)
    next_billing_date = serializers.DateTimeField(read_only=True, allow_null=True)
    auto_renew = serializers.BooleanField(read_only=True)
    cancelled_at = serializers.DateTimeField(read_only=True, allow_null=True)
    cancel_at_period_end = serializers.BooleanField(read_only=True)
    past_due_since = serializers.DateTimeField(read_only=True, allow_null=True)


# Renders a user from `accounts.selectors.user_get_profile`, which loads the license, the
# balance and the live subscription with it; `PATCH` takes UserUpdateSerializer.
class UserSerializer(serializers.Serializer):
    """The profile as the owner sees it."""

    id = serializers.UUIDField(read_only=True)
    email = serializers.EmailField(read_only=True)
    name = serializers.CharField(read_only=True)
    phone_number = serializers.CharField(read_only=True)
    organization = serializers.CharField(read_only=True)
    job_title = serializers.CharField(read_only=True)
    country = serializers.CharField(read_only=True)
    industry = serializers.CharField(read_only=True)
    tax_id = serializers.CharField(read_only=True, help_text="Printed on tax invoices (optional).")
    billing_address = serializers.CharField(read_only=True, help_text="Printed on tax invoices (optional).")
    tier = serializers.ChoiceField(choices=Tier.choices, read_only=True)
    model_limit = serializers.IntegerField(read_only=True)
    models_used = serializers.IntegerField(read_only=True)
    time_spent = serializers.IntegerField(read_only=True, help_text="Seconds spent in the app.")
    max_step_reached = serializers.IntegerField(read_only=True)
    last_session_final_step = serializers.IntegerField(read_only=True)
    credit_balance = serializers.IntegerField(source="credit_balance_now", read_only=True)
    license = LicenseSerializer(read_only=True, allow_null=True)
    subscription = SubscriptionSerializer(source="live_subscription", read_only=True, allow_null=True)
    email_verified = serializers.SerializerMethodField()
    is_staff = serializers.BooleanField(read_only=True)
    date_joined = serializers.DateTimeField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)

    def get_email_verified(self, user) -> bool:
        return user.email_verified_at is not None


class UserUpdateSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = [
            "name",
            "phone_number",
            "organization",
            "job_title",
            "country",
            "industry",
            "tax_id",
            "billing_address",
        ]


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
