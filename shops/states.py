"""The order state machine: how an order placed through a form moves.

```
new ──► confirmed ──► paid ──► shipped ──► completed
 │  └───────┼──────────▲  │
 ▼          ▼             ▼
cancelled ◄─┴─────────────┘   (cancelling gives the stock back, once)
```

Anything else is 409 `invalid_transition`, moving to the status the order already has included
(so a repeated cancel cannot restock twice). Only `shops.services.order_transition` writes
`FormSubmission.status`; a database trigger refuses every other write.
"""

from config.state_machines import StateMachine
from shops.models import ORDER_STATUS_SETTING, SHOP_SUBSCRIPTION_STATUS_SETTING, OrderStatus, ShopSubscription

S = OrderStatus

ORDER_TRANSITIONS: dict[str, frozenset[str]] = {
    S.NEW: frozenset({S.CONFIRMED, S.PAID, S.CANCELLED}),
    S.CONFIRMED: frozenset({S.PAID, S.CANCELLED}),
    S.PAID: frozenset({S.SHIPPED, S.CANCELLED}),
    S.SHIPPED: frozenset({S.COMPLETED}),
    S.COMPLETED: frozenset(),
    S.CANCELLED: frozenset(),
}

ORDER_MACHINE = StateMachine(
    entity="order",
    transitions=ORDER_TRANSITIONS,
    setting=ORDER_STATUS_SETTING,
    message="An order cannot go from {current} to {target}.",
)


def can_transition(current: str, target: str) -> bool:
    return ORDER_MACHINE.can_transition(current, target)


# The shop plan subscription: like the user's (accounts/states.py), without cancellation (a shop
# stops renewing by turning auto-renew off; at its end the plan expires to free).
#
#   active ⇄ past_due ──► expired (terminal)
#     └───────────────────┘
SS = ShopSubscription.Status

SHOP_SUBSCRIPTION_TRANSITIONS: dict[str, frozenset[str]] = {
    SS.ACTIVE: frozenset({SS.PAST_DUE, SS.EXPIRED}),
    SS.PAST_DUE: frozenset({SS.ACTIVE, SS.EXPIRED}),
    SS.EXPIRED: frozenset(),
}

SHOP_SUBSCRIPTION_MACHINE = StateMachine(
    entity="shop plan", transitions=SHOP_SUBSCRIPTION_TRANSITIONS, setting=SHOP_SUBSCRIPTION_STATUS_SETTING
)
