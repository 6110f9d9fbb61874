"""Every management command, run as an operator runs it (`python manage.py <cmd> ...` in a fresh
process): a bad value of each kind of argument it takes is one line on stderr and exit status 2,
never a traceback; dry runs refuse what their `--yes` runs refuse."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import get_commands, load_command_class
from django.db import connection

from config.commands import USAGE_ERROR, BaseCommand

REPO = Path(__file__).resolve().parents[2]
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"

# Per command, a bad value of each kind of argument it takes (and for those that take none, an
# option it does not have). Every command also gets BASE_CASES, for the options Django gives all.
BAD_ARGUMENTS: dict[str, list[list[str]]] = {
    "create_api_key": [
        ["--name", "", "--scopes", "jobs:read"],
        ["--name", "x" * 51, "--scopes", "jobs:read"],
        ["--name", "k", "--scopes", "jobs:delete"],
        ["--name", "k", "--scopes", ","],
        ["--scopes", "jobs:read"],
    ],
    "create_inbound_key": [
        ["--name", "k", "--shop", "no-such-shop"],
        ["--name", "k", "--shop", UNKNOWN_ID],
        ["--name", "", "--shop", "no-such-shop"],
        ["--name", "x" * 51, "--shop", "no-such-shop"],
    ],
    "seed_demo": [["--bogus"]],
    "seed_demo_worker_key": [["--bogus"]],
    "metrics_backfill": [["--bogus"]],
    "sync_schedules": [["--bogus"]],
    "analytics_verify": [
        ["--from", "yesterday", "--to", "2026-01-31"],
        ["--from", "2026-13-01", "--to", "2026-01-31"],
        ["--from", "2026-01-01", "--to", "2026-02-30"],
        ["--from", "2026-02-01", "--to", "2026-01-01"],
        ["--from", "2026-01-01", "--to", "2026-01-02", "--no-platform=yes"],
        ["--to", "2026-01-02"],
    ],
    "generate_metrics": [
        ["--from", "yesterday", "--to", "2026-01-31"],
        ["--from", "2026-01-01", "--to", "2026-13-01"],
        ["--from", "2026-02-01", "--to", "2026-01-01"],
        ["--from", "2026-01-01", "--to", "2026-01-02", "--shop", "not-a-uuid"],
        ["--from", "2026-01-01", "--to", "2026-01-02", "--shop", UNKNOWN_ID],
        ["--from", "2026-01-01", "--to", "2026-01-02", "--platform=1"],
    ],
    "backup_create": [["--kind", "hourly"], ["--no-verify=1"]],
    "backup_list": [["--limit", "many"], ["--limit", "0"], ["--limit", "-3"]],
    "backup_prune": [["--yes=please"], ["--bogus"]],
    "backup_restore": [
        ["not-a-uuid", "--database", "restored"],
        [UNKNOWN_ID, "--database", "restored"],
        [UNKNOWN_ID],
        [UNKNOWN_ID, "--database", "restored", "--yes=1"],
        ["--to-time", "2026-11-22T10:41:00", "--pgdata", "/tmp/restored", "--port", "55999"],
        ["--to-time", "yesterday", "--pgdata", "/tmp/restored", "--port", "55999"],
        ["--to-time", "2026-11-22T10:41:00Z", "--port", "55999"],
        ["--to-time", "2026-11-22T10:41:00Z", "--pgdata", "relative/dir", "--port", "55999"],
        ["--to-time", "2026-11-22T10:41:00Z", "--pgdata", "/tmp/restored", "--port", "0"],
        [UNKNOWN_ID, "--database", "restored", "--to-time", "2026-11-22T10:41:00Z"],
    ],
    "backup_verify": [["not-a-uuid"], [UNKNOWN_ID], ["--restore-test=1"]],
    "snapshot_cleanup": [["--yes=please"]],
    "snapshot_create": [
        ["--shop", "not-a-uuid"],
        ["--shop", UNKNOWN_ID],
        ["--shop", UNKNOWN_ID, "--note", "x" * 301],
    ],
    "snapshot_restore": [["not-a-uuid"], [UNKNOWN_ID], [UNKNOWN_ID, "--yes=please"]],
    "credits_audit": [["--bogus"]],
    "seed_demo_credits": [["--bogus"]],
    "seed_demo_jobs": [["--bogus"]],
    "seed_demo_shops": [["--bogus"]],
    "reencrypt_tokens": [["--yes=please"]],
}
BASE_CASES = [["--verbosity", "loud"]]


def project_commands() -> set[str]:
    return {
        path.stem
        for path in REPO.glob("*/management/commands/*.py")
        if not path.stem.startswith("_") and ".venv" not in path.parts
    }


def cases() -> list:
    return [
        pytest.param(command, args, id=f"{command} {' '.join(a[:20] for a in args)}")
        for command, bad in sorted(BAD_ARGUMENTS.items())
        for args in [*bad, *BASE_CASES]
    ]


def manage(*args: str) -> subprocess.CompletedProcess:
    """`python manage.py ...` in a fresh process, on the test database."""
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


def assert_usage_error(result: subprocess.CompletedProcess) -> str:
    """Exit status 2, one line on stderr, no traceback; returns that line."""
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == USAGE_ERROR, (result.returncode, result.stderr, result.stdout[-500:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_every_command_of_the_project_has_bad_argument_cases_and_the_project_base_class():
    commands = project_commands()

    assert commands == set(BAD_ARGUMENTS)
    for name in commands:
        command = load_command_class(get_commands()[name], name)
        assert isinstance(command, BaseCommand), name


@pytest.mark.django_db
@pytest.mark.parametrize(("command", "args"), cases())
def test_a_bad_argument_is_one_line_on_stderr_and_exit_status_2(command, args):
    line = assert_usage_error(manage(command, *args))

    assert line.strip()


@pytest.mark.django_db
def test_a_bad_date_names_the_argument_and_the_expected_format():
    line = assert_usage_error(manage("generate_metrics", "--from", "yesterday", "--to", "2026-01-01"))

    assert line == (
        "manage.py generate_metrics: error: argument --from: 'yesterday' is not a date (YYYY-MM-DD)"
        " (see --help)"
    )
