import factory

from jobs.models import Job, JobKind
from tests.factories import UserFactory


class JobFactory(factory.django.DjangoModelFactory):
    """A job row as-is (no charge): for reads, stats and tenancy. Services create real jobs."""

    class Meta:
        model = Job

    user = factory.SubFactory(UserFactory)
    kind = factory.LazyFunction(lambda: JobKind.objects.get(code="account_batch"))
    status = "pending"
    requested_count = 1
    runs_on_engine = False
    charged = True  # a fixture row: no ledger side effects
