"""The payment state machine: six states and the only moves between them.

```
pending ──► processing ──► completed ──► refunded
   │  └─────────┼──────────────▲  │          ▲
   │            ▼              │  └──────────┘ (partial refunds stay completed until the whole
   │          failed ──────────┘                amount is refunded)
   ▼            │
cancelled       └──► refunded (a refund notice that overtook the success notice)
```

- `failed → completed`: a provider may report success after a failed attempt.
- `pending|processing|failed → refunded`: a refund notice that arrives before the success notice
  marks the payment refunded without touching credits, and the later success grants nothing.
- `refunded` and `cancelled` are terminal.
- Only `credits.services.payment_transition` moves a payment along this table, and it performs
  the move's effect in the same transaction (completed: the credits or the subscription;
  failed: a renewal's subscription goes past due; refunded: the rest of the money is refunded
  and its credits clawed back). A database trigger refuses every other status write.
"""

from config.state_machines import StateMachine
from credits.models import PAYMENT_STATUS_SETTING, Payment

S = Payment.Status

PAYMENT_TRANSITIONS: dict[str, frozenset[str]] = {
    S.PENDING: frozenset({S.PROCESSING, S.COMPLETED, S.FAILED, S.CANCELLED, S.REFUNDED}),
    S.PROCESSING: frozenset({S.COMPLETED, S.FAILED, S.CANCELLED, S.REFUNDED}),
    S.FAILED: frozenset({S.COMPLETED, S.REFUNDED}),
    S.COMPLETED: frozenset({S.REFUNDED}),
    S.REFUNDED: frozenset(),
    S.CANCELLED: frozenset(),
}

PAYMENT_MACHINE = StateMachine(
    entity="payment",
    transitions=PAYMENT_TRANSITIONS,
    setting=PAYMENT_STATUS_SETTING,
)


def can_transition(current: str, target: str) -> bool:
    return PAYMENT_MACHINE.can_transition(current, target)
