import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from jobs.models import JobKind
from jobs.seed import CURRENT_SEED_KINDS
from tests.admin.builders import shared
from tests.factories import UserFactory, admin_login


@pytest.fixture(autouse=True)
def _seeded_job_kinds(request):
    """The seeded job kinds, re-made after a transactional test flushed them."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None:
        return
    request.getfixturevalue("transactional_db" if marker.kwargs.get("transaction") else "db")
    for kind in CURRENT_SEED_KINDS:
        JobKind.objects.get_or_create(code=kind["code"], defaults=kind)


@pytest.fixture(autouse=True)
def _fresh_shared_rows():
    shared.rows.clear()
    yield
    shared.rows.clear()


@pytest.fixture
def superuser(db):
    return UserFactory(is_staff=True, is_superuser=True)


@pytest.fixture
def admin_client(superuser):
    client = Client()
    admin_login(client, superuser)
    return client


@pytest.fixture
def staff_client():
    """A client logged in as staff holding only the permissions named (codenames)."""

    def make(*codenames):
        staff = UserFactory(is_staff=True)
        staff.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
        client = Client()
        admin_login(client, staff)
        client.user = staff
        return client

    return make
