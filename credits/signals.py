"""Signals through which higher layers learn what happened to a payment they opened.

A payment with a `purpose` (e.g. `shop_plan`, opened by the shops app) buys neither a credit
package nor a subscription plan; credits does not know what it buys. `payment_transition` sends
`payment_completed` when such a payment completes and `payment_failed` when it fails, inside the
transaction and after the payment row lock, with `payment` and `now`. Receivers apply the effect
there (a receiver's exception rolls the move back, so an effect happens exactly when the status
changes) and must follow the lock order: payment row first, then their own rows.
"""

from django.dispatch import Signal

payment_completed = Signal()
payment_failed = Signal()
