"""Read replicas against a real streaming replica started by the test.

A scratch primary (a copy of the test database) and a standby made from it with
`pg_basebackup -R` run on ports of their own. The app runs in a separate process configured as
deployed (DATABASE_URL = the primary, DATABASE_REPLICA_URLS = the standby) and answers requests
through Django's test client; each step reports which alias ran the view's queries.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from backups import pg
from config.replicas import ReplicaRouter
from tests.scratch_pg import Cluster, as_postgres, free_port, run, scratch_cluster

REPO = Path(__file__).resolve().parents[2]

SCENARIO = r"""
import json, os, subprocess, time
import django
django.setup()
from django.db import connections
from config.replicas import replica_usable
from accounts.models import User
from tests.conftest import client_for
from tests.factories import UserFactory

out = {}
staff = UserFactory(is_staff=True, is_superuser=True)
# the standby has the new user once it replayed that far
deadline = time.monotonic() + 60
while not User.objects.using("replica").filter(pk=staff.pk).exists():
    assert time.monotonic() < deadline, "the standby never caught up"
    time.sleep(0.1)
with connections["replica"].cursor() as cursor:
    cursor.execute("SELECT pg_is_in_recovery()")
    out["replica_is_a_standby"] = cursor.fetchone()[0]

def get(client, path):
    seen = {"default": [], "replica": []}

    def recorder(alias):
        def record(execute, sql, params, many, context):
            seen[alias].append(sql)
            return execute(sql, params, many, context)
        return record

    # execute_wrapper: every query of the connection, opening it or not (a dead standby opens none)
    with connections["default"].execute_wrapper(recorder("default")), \
         connections["replica"].execute_wrapper(recorder("replica")):
        response = client.get(path)
    return {
        "status": response.status_code,
        "replica_queries": len(seen["replica"]),
        "primary_analytics_queries": sum("analytics_" in sql for sql in seen["default"]),
    }

reader = client_for(staff)
out["heavy_read"] = get(reader, "/api/platform/summary")
out["ordinary_read"] = get(reader, "/api/users/me")

writer = client_for(UserFactory())
posted = writer.post("/api/errors", {"message": "boom", "url": "https://app.example/x"}, format="json")
out["write_status"] = posted.status_code
out["write_sets_pin_cookie"] = posted.cookies.get("primary_pin") is not None
out["read_after_write"] = get(writer, "/api/stats")

other = client_for(UserFactory())
out["stats_from_replica"] = get(other, "/api/stats")

# a lagging standby: replay paused while the primary goes on writing
with connections["replica"].cursor() as cursor:
    cursor.execute("SELECT pg_wal_replay_pause()")
UserFactory()
time.sleep(float(os.environ["REPLICA_MAX_LAG_SECONDS"]) + 1)
UserFactory()
time.sleep(0.5)
out["lagging"] = get(client_for(staff), "/api/platform/summary")
with connections["replica"].cursor() as cursor:
    cursor.execute("SELECT pg_wal_replay_resume()")
deadline = time.monotonic() + 60
while not replica_usable("replica"):
    assert time.monotonic() < deadline, "the standby never caught up again"
    time.sleep(0.2)
out["caught_up"] = get(client_for(staff), "/api/platform/summary")

# a dead standby
subprocess.run(os.environ["STOP_REPLICA"].split(), check=True, capture_output=True)
out["dead"] = get(client_for(staff), "/api/platform/summary")
print(json.dumps(out))
"""


@pytest.fixture
def primary_and_standby(transactional_db):
    """The scratch primary with a copy of the test database, and its streaming standby."""
    with scratch_cluster() as primary:
        primary.copy_database(pg.live_database())
        standby = Cluster(root=primary.root, port=free_port(), bin=primary.bin, data=primary.root / "standby")
        run(
            as_postgres(
                [
                    str(primary.bin / "pg_basebackup"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(primary.port),
                    "-U",
                    "postgres",
                    "-D",
                    str(standby.data),
                    "-R",
                    "-X",
                    "stream",
                    "-c",
                    "fast",
                ]
            )
        )
        standby.start()
        yield primary, standby


@pytest.mark.django_db(transaction=True)
def test_heavy_reads_use_the_standby_writers_read_their_writes_and_a_bad_standby_is_skipped(
    primary_and_standby,
):
    primary, standby = primary_and_standby
    database = pg.live_database()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": primary.url(database),
        "DATABASE_REPLICA_URLS": standby.url(database),
        "REPLICA_MAX_LAG_SECONDS": "1",
        "REPLICA_CHECK_SECONDS": "0",
        "REPLICA_CONNECT_TIMEOUT": "2",
        "STOP_REPLICA": " ".join(
            as_postgres([str(standby.bin / "pg_ctl"), "-D", str(standby.data), "-m", "immediate", "stop"])
        ),
    }
    result = subprocess.run(
        [sys.executable, "-c", SCENARIO], cwd=REPO, env=env, capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0, result.stderr[-4000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])

    assert out["replica_is_a_standby"] is True
    # analytics read from the standby, nothing analytical from the primary
    assert out["heavy_read"]["status"] == 200
    assert out["heavy_read"]["replica_queries"] > 0
    assert out["heavy_read"]["primary_analytics_queries"] == 0
    # an ordinary read stays on the primary
    assert out["ordinary_read"]["status"] == 200 and out["ordinary_read"]["replica_queries"] == 0
    # a request that wrote pins its client to the primary: the next heavy read does not use the standby
    assert out["write_status"] == 201
    assert out["write_sets_pin_cookie"] is True
    assert out["read_after_write"]["status"] == 200 and out["read_after_write"]["replica_queries"] == 0
    assert out["stats_from_replica"]["status"] == 200 and out["stats_from_replica"]["replica_queries"] > 0
    # a standby behind by more than REPLICA_MAX_LAG_SECONDS is skipped (one lag check, no reads)
    assert out["lagging"]["status"] == 200
    assert out["lagging"]["replica_queries"] == 1
    assert out["lagging"]["primary_analytics_queries"] > 0
    assert out["caught_up"]["status"] == 200 and out["caught_up"]["replica_queries"] > 1
    # a dead standby is skipped without an error (its lag check fails, nothing else is tried there)
    assert out["dead"]["status"] == 200
    assert out["dead"]["replica_queries"] == 1
    assert out["dead"]["primary_analytics_queries"] > 0


def test_nothing_is_ever_migrated_on_a_replica(settings):
    settings.DATABASE_REPLICAS = ["replica"]
    router = ReplicaRouter()
    assert router.allow_migrate("replica", "credits") is False
    assert router.allow_migrate("default", "credits") is None
