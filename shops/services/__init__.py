"""Writes to shops. Every function here is the only way its change is made.

Aliases keep the names of the original shop services (`update_stock`, `process_order_stock_changes`,
`get_low_stock_items`) pointing at the `<entity>_<action>` functions.
"""

from shops.selectors import get_low_stock_items, item_list_low_stock
from shops.services.chat import (
    conversation_receive_message,
    keyword_reply_match,
    message_send,
    outbound_limit_check,
)
from shops.services.delivery import (
    integration_mark_needs_reauth,
    message_acknowledge,
    message_deliver,
    message_delivery_reannounce,
)
from shops.services.forms import form_create, form_update
from shops.services.integrations import integration_tokens_reencrypt
from shops.services.orders import order_submit, order_transition
from shops.services.shops import (
    member_remove,
    member_update_role,
    shop_create,
    shop_delete,
    shop_plan_change,
    shop_update,
)
from shops.services.stock import (
    item_create,
    item_delete,
    item_update,
    order_process_stock_changes,
    process_order_stock_changes,
    stock_history_cleanup,
    stock_update,
    update_stock,
)
from shops.states import ORDER_TRANSITIONS

__all__ = [
    "ORDER_TRANSITIONS",
    "conversation_receive_message",
    "form_create",
    "form_update",
    "get_low_stock_items",
    "integration_mark_needs_reauth",
    "integration_tokens_reencrypt",
    "item_create",
    "item_delete",
    "item_list_low_stock",
    "item_update",
    "keyword_reply_match",
    "member_remove",
    "member_update_role",
    "message_acknowledge",
    "message_deliver",
    "message_delivery_reannounce",
    "message_send",
    "order_process_stock_changes",
    "order_submit",
    "outbound_limit_check",
    "order_transition",
    "process_order_stock_changes",
    "shop_create",
    "shop_delete",
    "shop_plan_change",
    "shop_update",
    "stock_history_cleanup",
    "stock_update",
    "update_stock",
]
