"""Signals through which higher layers learn what happened to a subscription.

accounts never imports credits (the layers), so the billing emails a subscription's events cause
are sent by a receiver in credits (`credits.emails`). `subscription_changed` is sent with
`subscription` (the row as just saved), `event` and `now`, inside the transaction that made the
change and after the user and subscription row locks, so a receiver's writes commit or roll
back with it. Events:

- `past_due`, `active`, `cancelled`, `expired`: `subscription_transition` moved the status there;
- `cancel_requested`: `subscription_cancel` stopped renewal (the subscription runs to its end).
"""

from django.dispatch import Signal

subscription_changed = Signal()

CANCEL_REQUESTED = "cancel_requested"
