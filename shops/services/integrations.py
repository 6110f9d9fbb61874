"""Social integrations: tokens are only ever stored encrypted (shops.crypto)."""

import logging

from django.db import connection, transaction

from shops import crypto

logger = logging.getLogger(__name__)
TOKEN_COLUMNS = ("access_token", "refresh_token", "channel_secret", "app_secret", "verify_token")


@transaction.atomic
def integration_tokens_reencrypt(*, dry_run: bool = True) -> dict:
    """Re-encrypt every stored token and webhook secret whose ciphertext is not under the newest
    FERNET_KEYS key.

    Works on the raw ciphertext (never materializes plaintext in a model), locking the rows it
    reads. With dry_run=True only counts. Returns {"integrations", "stale_tokens", "reencrypted"}.
    Raises cryptography's InvalidToken if a token is under none of the configured keys (a key was
    dropped too early): nothing is changed then.
    """
    stale = 0
    updates = []
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, {', '.join(TOKEN_COLUMNS)} FROM shops_socialintegration ORDER BY id FOR UPDATE"
        )
        rows = cursor.fetchall()
        for pk, *values in rows:
            changes = {}
            for column, value in zip(TOKEN_COLUMNS, values, strict=True):
                if value and not crypto.is_current(value):
                    stale += 1
                    changes[column] = crypto.rotate(value)
            if changes:
                updates.append((pk, changes))
        if not dry_run:
            for pk, changes in updates:
                assignments = ", ".join(f"{column} = %s" for column in changes)
                cursor.execute(
                    f"UPDATE shops_socialintegration SET {assignments} WHERE id = %s", [*changes.values(), pk]
                )
    reencrypted = 0 if dry_run else stale
    logger.info("reencrypt tokens: %s integrations, %s stale, %s re-encrypted", len(rows), stale, reencrypted)
    return {"integrations": len(rows), "stale_tokens": stale, "reencrypted": reencrypted}
