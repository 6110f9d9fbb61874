"""The email-verification token (accounts.tokens): signed with public django.core.signing, spent
by any change to what it vouches for, expired after EMAIL_VERIFICATION_TIMEOUT."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from accounts.tokens import email_verification_tokens, password_reset_tokens
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_a_token_verifies_the_address_it_was_made_for():
    user = UserFactory()

    token = email_verification_tokens.make_token(user)

    assert email_verification_tokens.check_token(user, token)
    assert len(token) <= 128  # the confirm serializer's limit


def test_a_token_is_spent_once_the_address_is_verified_or_changed():
    user = UserFactory()
    token = email_verification_tokens.make_token(user)

    user.email_verified_at = timezone.now()
    assert not email_verification_tokens.check_token(user, token)
    user.email_verified_at = None
    user.email = "someone.else@example.com"
    assert not email_verification_tokens.check_token(user, token)


def test_a_token_is_the_users_own():
    token = email_verification_tokens.make_token(UserFactory())

    assert not email_verification_tokens.check_token(UserFactory(), token)


def test_a_token_expires_after_the_timeout(settings):
    settings.EMAIL_VERIFICATION_TIMEOUT = 3600
    user = UserFactory()
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        token = email_verification_tokens.make_token(user)
        traveller.shift(timedelta(seconds=3599))
        assert email_verification_tokens.check_token(user, token)
        traveller.shift(timedelta(seconds=2))
        assert not email_verification_tokens.check_token(user, token)


@pytest.mark.parametrize("token", ["", None, "x", "a:b:c", "é" * 40, 12])
def test_garbage_is_not_a_token(token):
    assert not email_verification_tokens.check_token(UserFactory(), token)


def test_reset_and_verification_tokens_are_not_interchangeable():
    user = UserFactory()

    assert not email_verification_tokens.check_token(user, password_reset_tokens.make_token(user))
    assert not password_reset_tokens.check_token(user, email_verification_tokens.make_token(user))
