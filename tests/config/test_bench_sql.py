"""The benchmarks load their data with INSERT statements of their own (bench/*.py): a NOT NULL
column added to a model without a database default breaks them, and nothing else would notice
until someone runs one. This reads every INSERT with a literal table and column list out of
the scripts (column lists kept in module-level string constants included) and checks it names
every NOT NULL column the migrated test database has no default for."""

import ast
import re
from pathlib import Path

import pytest
from django.db import connection

BENCH = Path(__file__).resolve().parents[2] / "bench"
INSERT = re.compile(r"INSERT INTO (\w+)\s*\(([^)]*)\)", re.S)


def _text(node, constants: dict) -> str | None:
    """A string literal, or an f-string whose every substitution is a known constant."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(value.value)
            elif isinstance(value.value, ast.Name) and value.value.id in constants:
                parts.append(constants[value.value.id])
            else:
                parts.append("{?}")
        return "".join(parts)
    return None


def bench_inserts() -> list[tuple[str, str, list[str]]]:
    found = []
    for path in sorted(BENCH.glob("*.py")):
        tree = ast.parse(path.read_text())
        constants = {}
        for node in tree.body:
            if (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
            ):
                text = _text(node.value, constants)
                if text is not None:
                    constants[node.targets[0].id] = text
        for node in ast.walk(tree):
            text = _text(node, constants)
            for table, columns in INSERT.findall(text or ""):
                if "{?}" not in columns:
                    found.append((path.name, table, [c.strip() for c in columns.split(",") if c.strip()]))
    return found


def required_columns(table: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' "
            "AND table_name = %s AND is_nullable = 'NO' AND column_default IS NULL "
            "AND is_identity = 'NO' AND is_generated = 'NEVER'",
            [table],
        )
        return {row[0] for row in cursor.fetchall()}


@pytest.mark.django_db
def test_every_benchmark_insert_names_each_required_column_of_its_table():
    inserts = [
        (script, table, columns) for script, table, columns in bench_inserts() if required_columns(table)
    ]
    # the scripts' loads of jobs, users, shops, orders, analytics and the ledger are all read
    assert len(inserts) >= 15, inserts
    missing = {
        f"{script}: {table}": sorted(required_columns(table) - set(columns))
        for script, table, columns in inserts
        if required_columns(table) - set(columns)
    }
    assert missing == {}
