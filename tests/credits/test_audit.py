import pytest
from django.core.management import CommandError, call_command

from config.schedules import SCHEDULES
from credits.models import CreditBalance
from credits.selectors import credits_audit
from credits.services import credits_charge, credits_grant
from credits.tasks import audit_balances

pytestmark = pytest.mark.django_db


def test_audit_passes_when_every_balance_matches_its_ledger(user, other_user, capsys):
    credits_grant(user=user, amount=5, idempotency_key="g1")
    credits_charge(user=user, amount=2, idempotency_key="c1")
    credits_grant(user=other_user, amount=1, idempotency_key="g2")

    call_command("credits_audit")

    assert "OK" in capsys.readouterr().out
    assert credits_audit() == [] and audit_balances() == 0


def test_audit_reports_a_balance_that_differs_from_the_ledger_and_exits_non_zero(user, other_user, capsys):
    credits_grant(user=user, amount=5, idempotency_key="g1")
    credits_grant(user=other_user, amount=5, idempotency_key="g2")
    # a corruption the services never make (the counter moves with it: the row CHECK holds)
    CreditBalance.objects.filter(user=user).update(balance=7, lifetime_bonus=7)

    with pytest.raises(CommandError):
        call_command("credits_audit")

    out = capsys.readouterr().out
    assert user.email in out and "balance=7" in out and "ledger_sum=5" in out
    assert other_user.email not in out
    assert audit_balances() == 1


def test_audit_reports_lifetime_counters_that_differ_from_their_ledger_sums(user, other_user, capsys):
    credits_grant(user=user, amount=5, idempotency_key="g1", type="purchase")
    credits_charge(user=user, amount=2, idempotency_key="c1")
    credits_grant(user=other_user, amount=1, idempotency_key="g2")
    # counters shifted between types: the balance (and the row CHECK) still agree
    CreditBalance.objects.filter(user=user).update(lifetime_purchased=6, lifetime_spent=3)

    [mismatch] = credits_audit()

    assert mismatch.email == user.email and mismatch.balance == mismatch.ledger_sum == 3
    assert mismatch.counters == {"lifetime_purchased": (6, 5), "lifetime_spent": (3, 2)}
    with pytest.raises(CommandError):
        call_command("credits_audit")
    assert "lifetime_spent=3 ledger_lifetime_spent=2" in capsys.readouterr().out


def test_audit_reports_ledger_rows_without_a_balance_row(user):
    credits_grant(user=user, amount=3, idempotency_key="g1")
    CreditBalance.objects.filter(user=user).delete()

    [mismatch] = credits_audit()

    assert mismatch.balance is None and mismatch.ledger_sum == 3


def test_audit_runs_nightly_from_the_declared_schedules():
    [entry] = [s for s in SCHEDULES if s.task == "credits.audit_balances"]
    assert entry.crontab.get("hour") is not None and entry.interval_seconds is None
    assert audit_balances.name == entry.task


def test_sync_schedules_registers_the_audit_task():
    from django_celery_beat.models import PeriodicTask

    call_command("sync_schedules")

    assert PeriodicTask.objects.filter(task="credits.audit_balances", enabled=True).exists()
