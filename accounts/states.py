"""The license and subscription state machines.

License:
```
active ──► expired ──► active (reinstated, e.g. a new period)
  │ ▲         │
  ▼ │         ▼
suspended ──► cancelled ◄── (from any state but cancelled)
```
- `active → expired`: the daily task, once `date_end` has passed.
- `active ↔ suspended`: staff suspend a license and reinstate it.
- `cancelled` is terminal.

Subscription:
```
active ⇄ past_due       (a failed renewal payment / a payment during the grace period)
   └──────┴──► cancelled | expired   (both terminal)
```

Only `accounts.services.license_transition` and `accounts.services.subscription_transition`
write these statuses; database triggers refuse every other write.
"""

from accounts.models import LICENSE_STATUS_SETTING, SUBSCRIPTION_STATUS_SETTING, License, Subscription
from config.state_machines import StateMachine

L = License.Status
S = Subscription.Status

LICENSE_TRANSITIONS: dict[str, frozenset[str]] = {
    L.ACTIVE: frozenset({L.EXPIRED, L.SUSPENDED, L.CANCELLED}),
    L.EXPIRED: frozenset({L.ACTIVE, L.CANCELLED}),
    L.SUSPENDED: frozenset({L.ACTIVE, L.CANCELLED}),
    L.CANCELLED: frozenset(),
}

SUBSCRIPTION_TRANSITIONS: dict[str, frozenset[str]] = {
    S.ACTIVE: frozenset({S.PAST_DUE, S.CANCELLED, S.EXPIRED}),
    S.PAST_DUE: frozenset({S.ACTIVE, S.CANCELLED, S.EXPIRED}),
    S.CANCELLED: frozenset(),
    S.EXPIRED: frozenset(),
}

LICENSE_MACHINE = StateMachine(
    entity="license", transitions=LICENSE_TRANSITIONS, setting=LICENSE_STATUS_SETTING
)
SUBSCRIPTION_MACHINE = StateMachine(
    entity="subscription", transitions=SUBSCRIPTION_TRANSITIONS, setting=SUBSCRIPTION_STATUS_SETTING
)
