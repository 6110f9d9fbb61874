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
from shops.models import ORDER_STATUS_SETTING, OrderStatus

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
