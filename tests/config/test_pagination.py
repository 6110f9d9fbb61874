"""Both paging modes on a real history list (the credit ledger): `?page=` with a bounded count,
`?cursor=` keyset paging that is stable under inserts."""

import pytest

from credits.services import credits_grant
from tests.conftest import client_for

LIST = "/api/credits/transactions"


def _grant(user, n: int, start: int = 0):
    for i in range(start, start + n):
        credits_grant(user=user, amount=1, idempotency_key=f"page-test:{user.pk}:{i}")


def _walk(client, first_url, direction="next"):
    seen, url, pages = [], first_url, 0
    while url:
        body = client.get(url).json()
        seen.extend(row["id"] for row in body["results"])
        url, pages = body[direction], pages + 1
        assert pages < 100, "paging does not end"
    return seen


@pytest.mark.django_db
def test_cursor_paging_visits_every_row_once_in_list_order(user):
    _grant(user, 23)
    client = client_for(user)
    expected = [row["id"] for row in client.get(f"{LIST}?page_size=100").json()["results"]]

    seen = _walk(client, f"{LIST}?cursor=&page_size=5")

    assert seen == expected and len(seen) == 23


@pytest.mark.django_db
def test_cursor_previous_links_walk_back_to_the_first_page(user):
    _grant(user, 12)
    client = client_for(user)
    url = f"{LIST}?cursor=&page_size=5"
    pages = []
    while url:
        body = client.get(url).json()
        pages.append([row["id"] for row in body["results"]])
        last, url = body, body["next"]
    assert last["previous"] is not None

    back = client.get(last["previous"]).json()

    assert [row["id"] for row in back["results"]] == pages[-2]
    assert (
        client.get(back["previous"]).json()["results"]
        == client.get(f"{LIST}?cursor=&page_size=5").json()["results"]
    )
    assert client.get(f"{LIST}?cursor=&page_size=5").json()["previous"] is None


@pytest.mark.django_db
def test_rows_inserted_while_paging_do_not_shift_the_pages_still_to_read(user):
    # given a client that has read the first page of the newest-first ledger
    _grant(user, 10)
    client = client_for(user)
    first = client.get(f"{LIST}?cursor=&page_size=4").json()
    before = [row["id"] for row in client.get(f"{LIST}?page_size=100").json()["results"]]

    # when new rows arrive at the top
    _grant(user, 3, start=100)
    rest = _walk(client, first["next"])

    # then the rest of the walk is exactly the rows that followed the first page
    assert [row["id"] for row in first["results"]] + rest == before


@pytest.mark.django_db
@pytest.mark.parametrize("cursor", ["garbage", "eyJ2IjpbXX0", "!!!", "eyJ2IjpbIngiLCJ5Il19", "%00"])
def test_a_forged_cursor_is_a_400_envelope(user, cursor):
    _grant(user, 2)
    response = client_for(user).get(f"{LIST}?cursor={cursor}")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_cursor"


@pytest.mark.django_db
def test_page_count_stops_at_the_limit_and_later_pages_still_work(user, settings):
    settings.PAGINATION_COUNT_LIMIT = 7
    _grant(user, 12)
    client = client_for(user)

    first = client.get(f"{LIST}?page_size=5")
    third = client.get(f"{LIST}?page_size=5&page=3")

    assert first.json()["count"] == 7 and first["X-Count-Capped"] == "true"
    assert first.json()["next"] is not None
    assert len(third.json()["results"]) == 2 and third.json()["next"] is None
    assert client.get(f"{LIST}?page_size=5&page=4").status_code == 404


@pytest.mark.django_db
def test_page_count_is_exact_below_the_limit(user):
    _grant(user, 3)
    response = client_for(user).get(LIST)
    assert response.json()["count"] == 3 and not response.has_header("X-Count-Capped")


@pytest.mark.django_db
def test_cursor_pages_are_scoped_to_the_caller(user, other_user):
    _grant(user, 3)
    _grant(other_user, 4)
    token_page = client_for(user).get(f"{LIST}?cursor=&page_size=2").json()

    # another user following the first user's cursor sees only their own rows
    ids = _walk(client_for(other_user), token_page["next"])
    mine = {row["id"] for row in client_for(user).get(LIST).json()["results"]}
    assert not set(ids) & mine
