"""Events other apps can hook (e.g. analytics, notifications). Sent only after commit.

`low_stock_crossed(sender=Item, shop_id=UUID, item_ids=list[UUID])`: these tracked items went
from above their low-stock threshold to at or below it in one committed change. A receiver that
raises is logged, never undoes the stock change (it already committed).
"""

from django.dispatch import Signal

low_stock_crossed = Signal()
