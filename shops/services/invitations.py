"""Team invitations (issue 9): a shop admin invites an email address; the person behind it
joins by accepting the emailed token while logged in as that address.

The answer to an invitation never says whether the address has an account (or its name). Only
the SHA-256 of a token is stored; a token is single-use and expires after
SHOP_INVITATION_TTL_HOURS.
"""

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.emails import email_send_after_commit
from accounts.models import User
from config.exceptions import ApplicationError, Conflict, NotFound
from shops.models import Role, Shop, ShopInvitation, TeamMember
from shops.services.plans import shop_plan_limit_check

MAX_TOKEN_LENGTH = 128


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _invalid() -> NotFound:
    return NotFound("This invitation does not exist or is not addressed to you.", code="not_found")


@transaction.atomic
def invitation_create(*, shop: Shop, email: str, role: str, invited_by: User) -> ShopInvitation:
    """Invite `email` to `shop` with `role` and email them the link after commit.

    A pending invitation to the same address is revoked (or marked expired) and replaced. Raises
    ApplicationError(validation_error) for the owner role, Conflict(already_member) when a
    member already has this address (the team list shows it anyway) and
    Conflict(invitation_pending) when a concurrent request invited the address at the same
    moment (the partial unique index on pending (shop, lower(email)) decides); PlanLimit (403
    `plan_limit`) when the shop already has as many members as its plan allows.
    """
    if role == Role.OWNER or role not in Role.values:
        raise ApplicationError(
            "Invalid input.", code="validation_error", fields={"role": ["The owner role cannot be granted."]}
        )
    email = email.strip().lower()
    if TeamMember.objects.filter(shop=shop, user__email__iexact=email).exists():
        raise Conflict("This address already belongs to a member of the shop.", code="already_member")
    shop_plan_limit_check(shop_id=shop.pk, limit="max_members")
    now = timezone.now()
    pending = ShopInvitation.objects.filter(
        shop=shop, email__iexact=email, status=ShopInvitation.Status.PENDING
    )
    pending.filter(expires_at__lte=now).update(status=ShopInvitation.Status.EXPIRED, updated_at=now)
    pending.filter(expires_at__gt=now).update(status=ShopInvitation.Status.REVOKED, updated_at=now)
    token = secrets.token_urlsafe(32)
    try:
        with transaction.atomic():
            invitation = ShopInvitation.objects.create(
                shop=shop,
                email=email,
                role=role,
                token_hash=_hash(token),
                invited_by=invited_by,
                expires_at=now + timedelta(hours=settings.SHOP_INVITATION_TTL_HOURS),
            )
    except IntegrityError:
        raise Conflict("This address is being invited already.", code="invitation_pending") from None
    email_send_after_commit(
        template="shop_invitation",
        to=[email],
        context={
            "shop_name": shop.name,
            "inviter": invited_by.name or invited_by.email,
            "role": invitation.get_role_display(),
            "accept_url": f"{settings.FRONTEND_URL}/invitations/{token}",
            "expires_at": invitation.expires_at.strftime("%Y-%m-%d %H:%M UTC"),
        },
    )
    return invitation


@transaction.atomic
def invitation_accept(*, token: str, user: User) -> TeamMember:
    """Accept the invitation behind `token` as `user` and create the membership.

    Locks the invitation row (SELECT … FOR UPDATE), so of two concurrent accepts one creates
    the member and the other sees it accepted. Raises NotFound for an unknown token or one
    addressed to another email (its existence is not revealed), Conflict(invitation_used)
    for an accepted or revoked one, Conflict(invitation_expired) past its expiry and
    Conflict(already_member) when the user joined the shop another way meanwhile, and PlanLimit
    (403 `plan_limit`) when the shop's plan allows no more members (the invitation stays pending).
    """
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise _invalid()
    invitation = (
        ShopInvitation.objects.select_for_update()
        .select_related("shop")
        .filter(token_hash=_hash(token))
        .first()
    )
    if invitation is None or invitation.email.lower() != user.email.lower():
        raise _invalid()
    if invitation.status != ShopInvitation.Status.PENDING:
        raise Conflict("This invitation has been used or withdrawn.", code="invitation_used")
    now = timezone.now()
    if invitation.expires_at <= now:
        raise Conflict("This invitation has expired; ask for a new one.", code="invitation_expired")
    shop_plan_limit_check(shop_id=invitation.shop_id, limit="max_members")
    try:
        with transaction.atomic():
            member = TeamMember.objects.create(shop=invitation.shop, user=user, role=invitation.role)
    except IntegrityError:
        raise Conflict("You are already a member of this shop.", code="already_member") from None
    invitation.status = ShopInvitation.Status.ACCEPTED
    invitation.accepted_at = now
    invitation.accepted_by = user
    invitation.save(update_fields=["status", "accepted_at", "accepted_by", "updated_at"])
    return member
