"""What every management command of the project shares: bad arguments get one line on stderr and
exit status 2 (as any command-line tool answers them), never a traceback or a usage block.

Exit statuses: 0 done; 1 the operation ran and failed or found a problem (an audit mismatch, a
failed backup, an archive that no longer matches its checksum); 2 the arguments were refused and
nothing was done: unparseable, an unknown id, or what a service refuses to do with them (an
ApplicationError: a restore over an existing database, a snapshot that conflicts).
"""

import argparse
import sys
from datetime import date
from uuid import UUID

from django.core.management import base

from config.exceptions import ApplicationError

USAGE_ERROR = 2


class UsageError(base.CommandError):
    """A bad argument found after parsing (an unknown id, --from after --to): exit status 2."""

    def __init__(self, message: str):
        super().__init__(message, returncode=USAGE_ERROR)


def refused(exc: ApplicationError) -> UsageError:
    """A service's refusal of what the arguments asked for, as a one-line exit-2 error (a
    message that quotes a database error spans lines: they are joined)."""
    details = "; ".join(
        f"{name}: {' '.join(str(m) for m in messages)}" for name, messages in (exc.fields or {}).items()
    )
    message = f"{exc.message} ({details})" if details else exc.message
    return UsageError(" ".join(message.split()))


class BaseCommand(base.BaseCommand):
    """Base class of every command here.

    Run from the command line, the arguments are parsed once before Django's own run: a parser
    that is not marked as called from the command line raises CommandError instead of printing
    its usage and exiting, so the error is written here as one line, with exit status 2. Called
    through `call_command`, nothing changes: a bad argument raises CommandError.
    """

    def run_from_argv(self, argv):
        parser = self.create_parser(argv[0], argv[1])
        parser.called_from_command_line = False
        try:
            parser.parse_args(argv[2:])
        except base.CommandError as exc:
            message = str(exc).removeprefix("Error: ")
            self.stderr.write(f"{parser.prog}: error: {message} (see --help)")
            sys.exit(USAGE_ERROR)
        super().run_from_argv(argv)


def iso_date(value: str) -> date:
    """argparse type: a YYYY-MM-DD date."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def uuid_arg(value: str) -> UUID:
    """argparse type: an id (UUID)."""
    try:
        return UUID(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an id (a UUID)") from None


def positive_int(value: str) -> int:
    """argparse type: an integer of at least 1."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not at least 1")
    return number


def text(*, max_length: int, allow_blank: bool = False):
    """argparse type: a string of at most `max_length` characters (the column it is stored in),
    with something in it unless `allow_blank`."""

    def parse(value: str) -> str:
        if not allow_blank and not value.strip():
            raise argparse.ArgumentTypeError("must not be blank")
        if len(value) > max_length:
            raise argparse.ArgumentTypeError(f"at most {max_length} characters")
        return value

    return parse
