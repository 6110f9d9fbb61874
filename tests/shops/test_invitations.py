"""Team members join by invitation (issue 9): POST …/members sends one, the invitee accepts it."""

import hashlib
import re
import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from shops.models import Role, ShopInvitation, TeamMember
from shops.services.invitations import invitation_create
from tests.conftest import assert_error, client_for
from tests.factories import UserFactory
from tests.shops.factories import make_member, make_shop

pytestmark = pytest.mark.django_db


def members(shop) -> str:
    return f"/api/shops/{shop.pk}/members"


def accept(token) -> str:
    return f"/api/invitations/{token}/accept"


def _token(message) -> str:
    return re.search(r"/invitations/([A-Za-z0-9_-]+)", message.body).group(1)


@pytest.fixture
def shop():
    return make_shop()


@pytest.fixture
def owner_client(shop):
    return client_for(shop.owner)


def test_inviting_sends_an_email_and_accepting_creates_the_member(shop, owner_client, sent):
    invitee = UserFactory(email="new.person@example.com")

    with sent.capture():
        response = owner_client.post(
            members(shop), {"email": "New.Person@EXAMPLE.com", "role": "viewer"}, format="json"
        )
    assert response.status_code == 202, response.content
    outbox = sent.wait(1)
    assert response.json()["status"] == "pending" and response.json()["email"] == "new.person@example.com"
    assert not TeamMember.objects.filter(shop=shop, user=invitee).exists()  # no membership without consent
    (message,) = outbox
    assert message.to == ["new.person@example.com"] and message.alternatives[0][1] == "text/html"
    token = _token(message)
    invitation = ShopInvitation.objects.get()
    assert invitation.token_hash == hashlib.sha256(token.encode()).hexdigest() and token not in str(
        ShopInvitation.objects.values().get()
    )

    joined = client_for(invitee).post(accept(token))

    assert joined.status_code == 201, joined.content
    assert joined.json()["shop"]["id"] == str(shop.pk) and joined.json()["member"]["role"] == "viewer"
    assert TeamMember.objects.get(shop=shop, user=invitee).role == Role.VIEWER
    invitation.refresh_from_db()
    assert invitation.status == "accepted" and invitation.accepted_by == invitee


def test_the_answer_does_not_reveal_whether_the_address_has_an_account(shop, owner_client):
    UserFactory(email="known@example.com", name="Secret Name")

    known = owner_client.post(members(shop), {"email": "known@example.com", "role": "staff"}, format="json")
    unknown = owner_client.post(
        members(shop), {"email": "unknown@example.com", "role": "staff"}, format="json"
    )

    assert known.status_code == unknown.status_code == 202
    strip = lambda body: {k: v for k, v in body.items() if k not in ("id", "email", "expires_at")}  # noqa: E731
    assert strip(known.json()) == strip(unknown.json())
    assert set(known.json()) == set(unknown.json())
    assert b"Secret Name" not in known.content


def test_reusing_an_accepted_token_is_a_409(shop):
    invitee = UserFactory()
    token = _invite(shop, invitee.email)
    client = client_for(invitee)
    assert client.post(accept(token)).status_code == 201

    assert_error(client.post(accept(token)), 409, "invitation_used")
    assert TeamMember.objects.filter(shop=shop, user=invitee).count() == 1


def test_another_user_cannot_accept_someone_elses_invitation(shop):
    invitee, intruder = UserFactory(), UserFactory()
    token = _invite(shop, invitee.email)

    assert_error(client_for(intruder).post(accept(token)), 404, "not_found")
    assert not TeamMember.objects.filter(shop=shop, user=intruder).exists()
    # the invitation is still usable by the right person
    assert client_for(invitee).post(accept(token)).status_code == 201


@pytest.mark.parametrize("token", ["nope", "x" * 200, "A" * 43])
def test_unknown_or_malformed_tokens_are_a_404(user, token):
    assert_error(client_for(user).post(accept(token)), 404)


def test_accepting_anonymously_is_a_401(shop, api_client):
    token = _invite(shop, "someone@example.com")

    assert_error(api_client.post(accept(token)), 401)


def test_an_expired_invitation_is_refused(shop):
    invitee = UserFactory()
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        token = _invite(shop, invitee.email)
        clock.move_to(start + timedelta(days=8))

        assert_error(client_for(invitee).post(accept(token)), 409, "invitation_expired")
    assert not TeamMember.objects.filter(shop=shop, user=invitee).exists()


def test_a_reinvite_revokes_the_previous_token(shop):
    invitee = UserFactory()
    first = _invite(shop, invitee.email)
    second = _invite(shop, invitee.email, role=Role.ADMIN)

    assert_error(client_for(invitee).post(accept(first)), 409, "invitation_used")
    assert client_for(invitee).post(accept(second)).json()["member"]["role"] == "admin"
    assert sorted(ShopInvitation.objects.values_list("status", flat=True)) == ["accepted", "revoked"]


def test_tenancy_a_non_member_gets_404_and_a_viewer_403(shop):
    outsider = UserFactory()
    viewer = make_member(shop, Role.VIEWER)
    body = {"email": "x@example.com", "role": "staff"}

    assert_error(client_for(outsider).post(members(shop), body, format="json"), 404, "not_found")
    assert_error(client_for(viewer.user).post(members(shop), body, format="json"), 403)
    assert not ShopInvitation.objects.exists()


def test_anonymous_invite_is_a_401(shop, api_client):
    assert_error(
        api_client.post(members(shop), {"email": "x@example.com", "role": "staff"}, format="json"), 401
    )


@pytest.mark.parametrize(
    "body",
    [
        {"email": "not-an-email", "role": "staff"},
        {"email": "x@example.com", "role": "emperor"},
        {"email": "x@example.com", "role": "owner"},
        {"role": "staff"},
        {"email": ["x@example.com"], "role": "staff"},
    ],
)
def test_bad_invitations_are_400(shop, owner_client, body):
    assert_error(owner_client.post(members(shop), body, format="json"), 400, "validation_error")
    assert not ShopInvitation.objects.exists()


def test_inviting_a_current_member_is_a_409(shop, owner_client):
    member = make_member(shop, Role.STAFF)

    response = owner_client.post(members(shop), {"email": member.user.email, "role": "viewer"}, format="json")

    assert_error(response, 409, "already_member")


def test_the_member_list_stays_cheap(shop, owner_client, django_assert_max_num_queries):
    for role in (Role.ADMIN, Role.STAFF, Role.VIEWER):
        make_member(shop, role)
    with django_assert_max_num_queries(4):
        response = owner_client.get(members(shop))
    assert response.json()["count"] == 4


def _invite(shop, email, role=Role.STAFF) -> str:
    """Invite through the service and read the token from the outgoing email's context."""
    from unittest import mock

    with mock.patch("shops.services.invitations.email_send_after_commit") as send:
        invitation_create(shop=shop, email=email, role=role, invited_by=shop.owner)
    return send.call_args.kwargs["context"]["accept_url"].rsplit("/", 1)[1]


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_accepts_make_one_member():
    shop = make_shop()
    invitee = UserFactory()
    token = _invite(shop, invitee.email)
    statuses, barrier = [], threading.Barrier(2)

    def go():
        try:
            client = client_for(invitee)
            barrier.wait()
            statuses.append(client.post(accept(token)).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(statuses) == [201, 409]
    assert TeamMember.objects.filter(shop=shop, user=invitee).count() == 1
