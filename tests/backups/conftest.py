import pytest
from django.db import connection


def storage_conf(path, backend="django.core.files.storage.FileSystemStorage", **options):
    return {"BACKEND": backend, "OPTIONS": {"location": str(path), **options}}


@pytest.fixture
def backup_root(settings, tmp_path):
    """A private `backups` storage (and an `offsite` one, not enabled) for this test."""
    root = tmp_path / "backups"
    settings.STORAGES = {
        **settings.STORAGES,
        "backups": storage_conf(root),
        "offsite": storage_conf(tmp_path / "offsite"),
    }
    settings.BACKUP_OFFSITE_STORAGES = []
    return root


def files_under(path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file()) if path.exists() else []


@pytest.fixture
def drop_other_connections():
    yield
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
