"""Single-purpose tokens built on Django's token generator (HMAC over user state, timestamped)."""

from django.conf import settings
from django.contrib.auth.tokens import PasswordResetTokenGenerator, default_token_generator


class EmailVerificationTokenGenerator(PasswordResetTokenGenerator):
    """A token for "this email address is mine". It stops working once the address is verified
    or changed, and after EMAIL_VERIFICATION_TIMEOUT; it cannot be used as a reset token (its
    own salt)."""

    key_salt = "accounts.tokens.EmailVerificationTokenGenerator"

    def __init__(self):
        super().__init__()
        self.timeout = settings.EMAIL_VERIFICATION_TIMEOUT

    def _make_hash_value(self, user, timestamp):
        return f"{user.pk}{user.email}{user.email_verified_at}{timestamp}"


password_reset_tokens = default_token_generator
email_verification_tokens = EmailVerificationTokenGenerator()
