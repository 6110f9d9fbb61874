"""A dry run (a destructive command without --yes) makes every check its --yes run makes, and
refuses what --yes refuses, with the same one-line error and exit status."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from backups import pg, services
from backups.models import BackupLog, RecoverySnapshot
from config.commands import USAGE_ERROR
from shops.models import Form, Item, StockHistory
from shops.services.stock import stock_update
from tests.config.test_commands import assert_usage_error, manage
from tests.shops.factories import make_form, make_item, make_shop


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def refusal(*args) -> CommandError:
    with pytest.raises(CommandError) as caught:
        run(*args)
    return caught.value


@pytest.fixture
def backup(backup_root):
    return services.backup_create()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("yes", [[], ["--yes"]], ids=["dry run", "--yes"])
def test_restore_refuses_the_live_an_existing_and_a_badly_named_database_with_or_without_yes(backup, yes):
    for database, says in (
        (pg.live_database(), "live database"),
        ("postgres", "already exists"),
        ("no spaces; please", "Invalid database name"),
    ):
        error = refusal("backup_restore", str(backup.pk), "--database", database, *yes)

        assert says in str(error) and error.returncode == USAGE_ERROR, (database, str(error))
    assert "would restore" not in str(error)


@pytest.mark.django_db(transaction=True)
def test_a_dry_run_into_a_free_name_reports_its_checks_and_creates_nothing(backup):
    target = pg.scratch_name()

    out = run("backup_restore", str(backup.pk), "--database", target)

    assert f"would restore backup {backup.pk}" in out and "matches its sha256" in out
    assert not pg.database_exists(target)


@pytest.mark.django_db(transaction=True)
def test_a_dry_run_refuses_an_archive_that_does_not_match_its_checksum_as_yes_does(backup):
    BackupLog.objects.filter(pk=backup.pk).update(sha256="0" * 64)
    target = pg.scratch_name()

    for yes in ([], ["--yes"]):
        error = refusal("backup_restore", str(backup.pk), "--database", target, *yes)

        assert "checksum mismatch" in str(error) and error.returncode == 1
    assert not pg.database_exists(target)


@pytest.mark.django_db(transaction=True)
def test_a_dry_run_refuses_a_backup_that_did_not_succeed():
    failed = BackupLog.objects.create(kind="manual", status="failed", started_at=timezone.now())

    error = refusal("backup_restore", str(failed.pk), "--database", pg.scratch_name())

    assert "only a succeeded backup" in str(error) and error.returncode == USAGE_ERROR


@pytest.mark.django_db(transaction=True)
def test_the_restore_dry_run_over_the_live_database_as_an_operator_runs_it_is_one_line_and_status_2():
    # given: a succeeded backup (the refusal comes before the archive is read)
    backup = BackupLog.objects.create(
        kind="manual",
        status="succeeded",
        started_at=timezone.now(),
        file_name="never-read.dump",
        sha256="0" * 64,
        size=1,
    )

    # when
    result = manage("backup_restore", str(backup.pk), "--database", pg.live_database())

    # then
    line = assert_usage_error(result)
    assert "Refusing to restore over the live database." in line
    assert "would restore" not in result.stdout


# --- recovery snapshots ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_snapshot_dry_run_reports_what_would_change_and_changes_nothing():
    # given
    shop = make_shop()
    item = make_item(shop, stock=4)
    snapshot = services.snapshot_create(shop=shop)
    stock_update(item=item, change=-3)
    make_item(shop, stock=1)
    history = StockHistory.objects.count()

    # when
    out = run("snapshot_restore", str(snapshot.pk))

    # then
    assert "would restore" in out and "items created 0, updated 0, deactivated 1" in out
    assert "stock adjustments 1" in out
    assert Item.objects.get(pk=item.pk).stock_quantity == 1
    assert Item.objects.filter(shop=shop, is_active=True).count() == 2
    assert StockHistory.objects.count() == history
    assert RecoverySnapshot.objects.count() == 1
    snapshot.refresh_from_db()
    assert snapshot.restored_at is None


@pytest.mark.django_db
@pytest.mark.parametrize("yes", [[], ["--yes"]], ids=["dry run", "--yes"])
def test_a_snapshot_restore_that_would_conflict_is_refused_with_or_without_yes(yes):
    # given: the snapshot's form slug now belongs to another shop's form
    shop = make_shop()
    form = make_form(shop, slug="spring-sale")
    snapshot = services.snapshot_create(shop=shop)
    form.delete()
    make_form(make_shop(), slug="spring-sale")

    # when
    error = refusal("snapshot_restore", str(snapshot.pk), *yes)

    # then
    assert "conflicts with the current catalogue" in str(error) and error.returncode == USAGE_ERROR
    assert not Form.objects.filter(shop=shop).exists()
    assert RecoverySnapshot.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_conflicting_snapshot_dry_run_as_an_operator_runs_it_is_one_line_and_status_2():
    shop = make_shop()
    form = make_form(shop, slug="autumn-sale")
    snapshot = services.snapshot_create(shop=shop)
    form.delete()
    make_form(make_shop(), slug="autumn-sale")

    line = assert_usage_error(manage("snapshot_restore", str(snapshot.pk)))

    assert "conflicts with the current catalogue" in line
