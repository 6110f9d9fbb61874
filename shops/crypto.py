"""Secrets at rest (SocialIntegration tokens): Fernet with rotating keys.

`settings.FERNET_KEYS` lists keys newest first. MultiFernet encrypts with the first key and
decrypts with any of them, so adding a new key in front keeps old rows readable until
`manage.py reencrypt_tokens` moves them to the newest key.
"""

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models


def _keys() -> list[Fernet]:
    keys = settings.FERNET_KEYS
    if isinstance(keys, str):
        keys = [keys]
    if not keys:
        raise RuntimeError("settings.FERNET_KEYS is empty: secrets cannot be stored.")
    return [Fernet(key.encode() if isinstance(key, str) else key) for key in keys]


def multifernet() -> MultiFernet:
    # Built per call (cheap) so a settings override in tests or a key rotation is seen at once.
    return MultiFernet(_keys())


def encrypt(value: str) -> str:
    return multifernet().encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    return multifernet().decrypt(token.encode()).decode()


def is_current(token: str) -> bool:
    """True when the ciphertext already uses the newest key."""
    try:
        _keys()[0].decrypt(token.encode())
    except InvalidToken:
        return False
    return True


def rotate(token: str) -> str:
    return multifernet().rotate(token.encode()).decode()


class EncryptedTextField(models.TextField):
    """A text column that only ever holds Fernet ciphertext; Python code sees plaintext.

    Empty strings stay empty (no secret to protect), so "no token" needs no ciphertext.
    Lookups other than isnull/exact-empty are meaningless on ciphertext; don't filter on it.
    """

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value in (None, ""):
            return value
        return encrypt(value)

    def from_db_value(self, value, expression, connection):
        if value in (None, ""):
            return value
        return decrypt(value)
