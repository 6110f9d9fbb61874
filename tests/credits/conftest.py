import threading

import pytest
from django.db import connection

from accounts.models import UserPreferences
from credits.models import EmailSent


def run_in_threads(target, args_list):
    """Run target(*args) in one real thread per args tuple, released together by a barrier.

    Returns the results (or raised exceptions) in order. Each thread closes its own DB
    connection so the test database can be dropped afterwards.
    """
    barrier = threading.Barrier(len(args_list))
    results = [None] * len(args_list)

    def worker(index, args):
        try:
            barrier.wait()
            results[index] = target(*args)
        except Exception as exc:  # the test inspects what each thread raised
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, a)) for i, a in enumerate(args_list)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.fixture
def ledger_sum():
    from django.db.models import Sum

    from credits.models import CreditTransaction

    def _sum(user):
        return CreditTransaction.objects.filter(user=user).aggregate(s=Sum("amount"))["s"] or 0

    return _sum


@pytest.fixture
def seeded_package():
    """One of the six packages the data migration seeds, by name."""
    from credits.models import CreditPackage

    return lambda name: CreditPackage.objects.get(name=name)


def email_opt_out(user) -> None:
    """The user turns email notifications off (the optional lifecycle emails stop)."""
    UserPreferences.objects.filter(user=user).update(
        notifications={"email": False, "push": False, "job_finished": True, "marketing": False}
    )


def email_kinds(user) -> list[str]:
    """The lifecycle emails recorded as sent to the user, payment receipts left out."""
    return sorted(
        EmailSent.objects.filter(user=user).exclude(kind="payment_received").values_list("kind", flat=True)
    )
