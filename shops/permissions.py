"""Who may do what in a shop, as one table.

viewer reads; staff also adjusts stock and handles orders and chat; admin also manages items,
forms, payment methods, replies, integrations and the team; owner everything (shop settings,
deleting the shop). A user who is not a member of the shop gets 404, never 403, so the API does
not reveal that the shop exists.
"""

from enum import StrEnum

from shops.models import Role


class Action(StrEnum):
    READ = "read"
    STOCK = "stock"
    ORDERS = "orders"
    CHAT = "chat"
    MANAGE = "manage"
    OWN = "own"


ROLE_ACTIONS: dict[str, frozenset[Action]] = {
    Role.VIEWER: frozenset({Action.READ}),
    Role.STAFF: frozenset({Action.READ, Action.STOCK, Action.ORDERS, Action.CHAT}),
    Role.ADMIN: frozenset({Action.READ, Action.STOCK, Action.ORDERS, Action.CHAT, Action.MANAGE}),
    Role.OWNER: frozenset(Action),
}


def role_allows(role: str, action: Action) -> bool:
    return action in ROLE_ACTIONS.get(role, frozenset())
