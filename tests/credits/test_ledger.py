import uuid

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from config.exceptions import Conflict
from credits.models import CreditBalance, CreditTransaction
from credits.selectors import balance_get, credits_audit
from credits.services import InsufficientCredits, credits_charge, credits_grant, credits_refund
from tests.credits.conftest import run_in_threads
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
REFUSED = "Cannot update or delete"


def test_grant_creates_balance_row_and_ledger_row(user, ledger_sum):
    row = credits_grant(user=user, amount=10, idempotency_key="g1", reason="welcome")

    assert row.type == CreditTransaction.Type.BONUS
    assert row.amount == 10 and row.balance_after == 10
    assert balance_get(user=user) == 10 == ledger_sum(user)
    user.refresh_from_db()
    assert user.credit_balance.balance == 10


def test_balance_get_is_zero_without_any_row(user):
    assert balance_get(user=user) == 0
    assert not CreditBalance.objects.filter(user=user).exists()


def test_charge_writes_negative_usage_row_with_balance_after(user, ledger_sum):
    credits_grant(user=user, amount=5, idempotency_key="g1")
    job_id = uuid.uuid4()

    row = credits_charge(user=user, amount=3, idempotency_key="c1", reason="render", job_id=job_id)

    assert row.type == CreditTransaction.Type.USAGE
    assert row.amount == -3 and row.balance_after == 2 and row.job_id == job_id
    assert balance_get(user=user) == 2 == ledger_sum(user)


def test_charge_beyond_balance_raises_402_and_changes_nothing(user, ledger_sum):
    credits_grant(user=user, amount=2, idempotency_key="g1")

    with pytest.raises(InsufficientCredits) as info:
        credits_charge(user=user, amount=3, idempotency_key="c1")

    assert info.value.status_code == 402 and info.value.code == "insufficient_credits"
    assert balance_get(user=user) == 2 == ledger_sum(user)
    assert not CreditTransaction.objects.filter(idempotency_key="c1").exists()


def test_charge_without_balance_row_raises_insufficient(user):
    with pytest.raises(InsufficientCredits):
        credits_charge(user=user, amount=1, idempotency_key="c1")
    assert balance_get(user=user) == 0


def test_charge_replayed_with_same_key_returns_first_row_and_charges_once(user, ledger_sum):
    credits_grant(user=user, amount=5, idempotency_key="g1")
    first = credits_charge(user=user, amount=2, idempotency_key="job:1:charge")

    again = credits_charge(user=user, amount=2, idempotency_key="job:1:charge")

    assert again.pk == first.pk
    assert balance_get(user=user) == 3 == ledger_sum(user)


def test_replayed_charge_returns_existing_row_even_when_balance_is_now_short(user):
    credits_grant(user=user, amount=2, idempotency_key="g1")
    first = credits_charge(user=user, amount=2, idempotency_key="c1")

    assert credits_charge(user=user, amount=2, idempotency_key="c1").pk == first.pk
    assert balance_get(user=user) == 0


def test_a_charge_with_a_new_key_takes_no_savepoint_inside_a_transaction(user, ledger_sum):
    credits_grant(user=user, amount=5, idempotency_key="g1")
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        row = credits_charge(user=user, amount=2, idempotency_key="job:new:charge", new_key=True)

    assert row.amount == -2 and row.balance_after == 3
    assert balance_get(user=user) == 3 == ledger_sum(user)
    assert not [q for q in queries.captured_queries if "SAVEPOINT" in q["sql"]]


def test_a_charge_claiming_a_new_key_that_exists_aborts_the_transaction_and_charges_nothing(user, ledger_sum):
    credits_grant(user=user, amount=5, idempotency_key="g1")
    credits_charge(user=user, amount=2, idempotency_key="c1")

    with pytest.raises(IntegrityError), transaction.atomic():
        credits_charge(user=user, amount=2, idempotency_key="c1", new_key=True)

    assert balance_get(user=user) == 3 == ledger_sum(user)
    assert CreditTransaction.objects.filter(idempotency_key="c1").count() == 1


def test_refund_adds_credits_once_per_key(user, ledger_sum):
    credits_grant(user=user, amount=3, idempotency_key="g1")
    credits_charge(user=user, amount=3, idempotency_key="c1")

    first = credits_refund(user=user, amount=2, idempotency_key="r1", reason="failed units")
    second = credits_refund(user=user, amount=2, idempotency_key="r1")

    assert first.pk == second.pk and first.type == "refund" and first.amount == 2
    assert balance_get(user=user) == 2 == ledger_sum(user)


@pytest.mark.parametrize("amount", [0, -1, 1.5, True, "3", None, 10**12])
def test_charge_and_refund_refuse_non_positive_or_non_integer_amounts(user, amount):
    with pytest.raises(ValueError):
        credits_charge(user=user, amount=amount, idempotency_key="k")
    with pytest.raises(ValueError):
        credits_refund(user=user, amount=amount, idempotency_key="k")
    assert not CreditTransaction.objects.exists()


def test_grant_refuses_unknown_type_and_usage(user):
    for bad in ("usage", "refund", "gift"):
        with pytest.raises(ValueError):
            credits_grant(user=user, amount=1, idempotency_key="k", type=bad)


def test_negative_adjustment_never_goes_below_zero(user, ledger_sum):
    staff = UserFactory(is_staff=True)
    credits_grant(user=user, amount=5, idempotency_key="g1", type="purchase")

    row = credits_grant(
        user=user,
        amount=-4,
        idempotency_key="adj1",
        type="adjustment",
        reason="duplicate purchase",
        created_by=staff,
    )
    with pytest.raises(InsufficientCredits):
        credits_grant(user=user, amount=-2, idempotency_key="adj2", type="adjustment")

    assert row.amount == -4 and row.created_by == staff and row.reason == "duplicate purchase"
    assert balance_get(user=user) == 1 == ledger_sum(user)


def test_charge_inside_outer_transaction_rolls_back_with_it(user):
    credits_grant(user=user, amount=5, idempotency_key="g1")

    with pytest.raises(RuntimeError), transaction.atomic():
        credits_charge(user=user, amount=2, idempotency_key="c1")
        raise RuntimeError("the caller's transaction fails")

    assert balance_get(user=user) == 5
    assert not CreditTransaction.objects.filter(idempotency_key="c1").exists()


def test_insufficient_charge_inside_outer_transaction_leaves_it_usable(user):
    credits_grant(user=user, amount=1, idempotency_key="g1")

    with transaction.atomic():
        with pytest.raises(InsufficientCredits):
            credits_charge(user=user, amount=2, idempotency_key="c1")
        credits_charge(user=user, amount=1, idempotency_key="c2")

    assert balance_get(user=user) == 0


def test_idempotency_key_reused_by_another_user_is_a_409_and_changes_nothing(user, other_user):
    # The contract changed (issue 9): the other user's row is no longer returned silently.
    credits_grant(user=user, amount=1, idempotency_key="shared")

    with pytest.raises(Conflict) as refused:
        credits_grant(user=other_user, amount=1, idempotency_key="shared")

    assert refused.value.code == "idempotency_key_reused"
    assert balance_get(user=other_user) == 0
    assert balance_get(user=user) == 1


@pytest.mark.parametrize(
    "replay",
    [
        lambda user: credits_charge(user=user, amount=3, idempotency_key="c1"),
        lambda user: credits_refund(user=user, amount=2, idempotency_key="c1"),
    ],
)
def test_idempotency_key_reused_with_another_amount_or_type_is_a_409(user, replay):
    credits_grant(user=user, amount=10, idempotency_key="g1")
    credits_charge(user=user, amount=2, idempotency_key="c1")

    with pytest.raises(Conflict) as refused:
        replay(user)

    assert refused.value.code == "idempotency_key_reused"
    assert balance_get(user=user) == 8
    assert CreditTransaction.objects.filter(idempotency_key="c1").count() == 1


def test_a_fast_path_row_is_a_saved_instance(user):
    credits_grant(user=user, amount=5, idempotency_key="g1")

    row = credits_charge(user=user, amount=2, idempotency_key="c1")

    row.reason = "edited"
    with pytest.raises(DatabaseError, match=REFUSED), transaction.atomic():
        row.save()  # an UPDATE (refused by the append-only trigger), not a second INSERT


def test_database_refuses_update_of_ledger_rows(user):
    row = credits_grant(user=user, amount=1, idempotency_key="g1")

    with pytest.raises(DatabaseError, match=REFUSED), transaction.atomic(), connection.cursor() as cur:
        cur.execute("UPDATE credits_credittransaction SET amount = 100 WHERE id = %s", [row.pk])

    row.refresh_from_db()
    assert row.amount == 1


def test_database_refuses_delete_of_ledger_rows(user):
    row = credits_grant(user=user, amount=1, idempotency_key="g1")

    with pytest.raises(DatabaseError, match=REFUSED), transaction.atomic(), connection.cursor() as cur:
        cur.execute("DELETE FROM credits_credittransaction WHERE id = %s", [row.pk])
    with pytest.raises(DatabaseError, match=REFUSED), transaction.atomic():
        CreditTransaction.objects.filter(pk=row.pk).delete()

    assert CreditTransaction.objects.filter(pk=row.pk).exists()


def test_every_write_moves_the_lifetime_counter_of_its_type_with_the_balance(user):
    credits_grant(user=user, amount=10, idempotency_key="p1", type="purchase")
    credits_grant(user=user, amount=4, idempotency_key="b1")
    credits_charge(user=user, amount=6, idempotency_key="c1")
    credits_refund(user=user, amount=2, idempotency_key="r1")
    credits_grant(user=user, amount=-3, idempotency_key="a1", type="adjustment")
    credits_charge(user=user, amount=6, idempotency_key="c1")  # a replay changes nothing
    with pytest.raises(InsufficientCredits):
        credits_charge(user=user, amount=100, idempotency_key="c2")

    row = CreditBalance.objects.get(user=user)
    assert (
        row.balance,
        row.lifetime_purchased,
        row.lifetime_spent,
        row.lifetime_refunded,
        row.lifetime_bonus,
        row.lifetime_adjusted,
    ) == (7, 10, 6, 2, 4, -3)
    assert credits_audit() == []


def test_first_write_through_the_locked_path_sets_its_counter(user):
    # no balance row yet: the write creates it under lock and takes the general path
    credits_grant(user=user, amount=5, idempotency_key="p1", type="purchase")

    assert CreditBalance.objects.filter(user=user).values_list("balance", "lifetime_purchased").get() == (
        5,
        5,
    )


def test_database_refuses_a_balance_change_that_its_lifetime_counters_do_not_explain(user):
    credits_grant(user=user, amount=5, idempotency_key="g1")

    with pytest.raises(IntegrityError, match="creditbalance_balance_is_lifetime_net"), transaction.atomic():
        CreditBalance.objects.filter(user=user).update(balance=4)
    with pytest.raises(IntegrityError, match="creditbalance_lifetime_gte_0"), transaction.atomic():
        CreditBalance.objects.filter(user=user).update(lifetime_bonus=-1, lifetime_adjusted=6)

    assert CreditBalance.objects.filter(user=user).values_list("balance", "lifetime_bonus").get() == (5, 5)


def test_database_refuses_negative_balance(user):
    credits_grant(user=user, amount=1, idempotency_key="g1")

    with pytest.raises(IntegrityError), transaction.atomic():
        CreditBalance.objects.filter(user=user).update(balance=-1)


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_charges_of_one_against_twenty_exactly_twenty_succeed(ledger_sum):
    # given a balance of 20
    user = UserFactory()
    credits_grant(user=user, amount=20, idempotency_key="seed")

    # when 50 threads each charge 1 at the same moment
    results = run_in_threads(
        lambda i: credits_charge(user=user, amount=1, idempotency_key=f"charge-{i}"),
        [(i,) for i in range(50)],
    )

    # then exactly 20 succeed, the rest are refused for lack of credits, and the books balance
    succeeded = [r for r in results if isinstance(r, CreditTransaction)]
    refused = [r for r in results if isinstance(r, InsufficientCredits)]
    assert len(succeeded) == 20 and len(refused) == 30, [
        r for r in results if isinstance(r, Exception) and not isinstance(r, InsufficientCredits)
    ]
    assert balance_get(user=user) == 0 == ledger_sum(user)
    assert sorted(r.balance_after for r in succeeded) == list(range(20))


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_writes_create_one_balance_row(ledger_sum):
    user = UserFactory()

    results = run_in_threads(
        lambda i: credits_grant(user=user, amount=1, idempotency_key=f"g-{i}"), [(i,) for i in range(10)]
    )

    assert all(isinstance(r, CreditTransaction) for r in results), results
    assert CreditBalance.objects.filter(user=user).count() == 1
    assert balance_get(user=user) == 10 == ledger_sum(user)


@pytest.mark.django_db(transaction=True)
def test_same_key_charged_concurrently_happens_once(ledger_sum):
    user = UserFactory()
    credits_grant(user=user, amount=10, idempotency_key="seed")

    results = run_in_threads(
        lambda: credits_charge(user=user, amount=3, idempotency_key="job:x:charge"), [()] * 10
    )

    assert all(isinstance(r, CreditTransaction) for r in results), results
    assert len({r.pk for r in results}) == 1
    assert balance_get(user=user) == 7 == ledger_sum(user)


@pytest.mark.django_db(transaction=True)
def test_grants_and_charges_interleaved_from_many_threads_keep_balance_equal_to_ledger_sum(ledger_sum):
    # given two users with some credits
    users = [UserFactory(), UserFactory()]
    for u in users:
        credits_grant(user=u, amount=5, idempotency_key=f"seed-{u.pk}")

    # when 40 threads each do a mix of grants, charges, refunds and negative adjustments on both
    def work(i):
        outcomes = []
        for step in range(10):
            user = users[(i + step) % 2]
            key = f"{i}-{step}"
            try:
                if step % 4 == 0:
                    credits_grant(user=user, amount=3, idempotency_key=f"g-{key}")
                elif step % 4 == 1:
                    credits_charge(user=user, amount=2, idempotency_key=f"c-{key}")
                elif step % 4 == 2:
                    credits_refund(user=user, amount=1, idempotency_key=f"r-{key}")
                else:
                    credits_grant(user=user, amount=-2, type="adjustment", idempotency_key=f"a-{key}")
                outcomes.append("ok")
            except InsufficientCredits:
                outcomes.append("short")
        return outcomes

    results = run_in_threads(work, [(i,) for i in range(40)])

    # then no thread hit an unexpected error and each user's books balance
    assert all(isinstance(r, list) for r in results), [r for r in results if not isinstance(r, list)]
    assert credits_audit() == []  # balances and every lifetime counter match the ledger
    for u in users:
        assert balance_get(user=u) == ledger_sum(u) >= 0
        assert CreditTransaction.objects.filter(user=u).count() == 1 + sum(
            1
            for i in range(40)
            for step in range(10)
            if users[(i + step) % 2] == u and results[i][step] == "ok"
        )


@pytest.mark.django_db(transaction=True)
def test_charge_outside_a_transaction_is_one_statement_and_returns_the_stored_row(django_assert_num_queries):
    user = UserFactory()
    credits_grant(user=user, amount=5, idempotency_key="seed")

    with django_assert_num_queries(1):
        row = credits_charge(user=user, amount=2, idempotency_key="c1", reason="render")

    stored = CreditTransaction.objects.get(pk=row.pk)
    assert (
        (stored.amount, stored.balance_after, stored.type, stored.reason, stored.created_at)
        == (row.amount, row.balance_after, row.type, row.reason, row.created_at)
        == (-2, 3, "usage", "render", row.created_at)
    )
    assert balance_get(user=user) == 3
