"""Single-purpose tokens: Django's password-reset generator, and a signed email-verification token."""

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core import signing
from django.utils.crypto import constant_time_compare, salted_hmac


class EmailVerificationTokenGenerator:
    """A token for "this email address is mine", with the interface of Django's token generators
    (`make_token`, `check_token`). It is a timestamped signature (django.core.signing, its own
    salt, so it is never a reset token) of a digest of the user's id, address and verification
    time: it stops working once the address is verified or changed, and after
    EMAIL_VERIFICATION_TIMEOUT seconds."""

    salt = "accounts.tokens.EmailVerificationTokenGenerator"

    def make_token(self, user) -> str:
        return signing.TimestampSigner(salt=self.salt, algorithm="sha256").sign(self.state(user))

    def check_token(self, user, token) -> bool:
        if not isinstance(token, str) or not token:
            return False
        try:
            state = signing.TimestampSigner(salt=self.salt, algorithm="sha256").unsign(
                token, max_age=settings.EMAIL_VERIFICATION_TIMEOUT
            )
        except signing.BadSignature:  # also SignatureExpired
            return False
        return constant_time_compare(state, self.state(user))

    def state(self, user) -> str:
        """What the token vouches for; any change to it spends the token."""
        value = f"{user.pk}|{user.email}|{user.email_verified_at}"
        return salted_hmac(self.salt, value, algorithm="sha256").hexdigest()[:32]


password_reset_tokens = default_token_generator
email_verification_tokens = EmailVerificationTokenGenerator()
