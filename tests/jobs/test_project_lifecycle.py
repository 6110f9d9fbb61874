"""Projects' lifecycle: draft → processing → completed → archived / deleted, through one
transition service (jobs.services.models3d.project_transition), with the time spent processing,
completed_at and the tooling applied; in the API and the admin."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import DatabaseError, transaction

from jobs.models import Project
from jobs.services.models3d import project_transition
from tests.conftest import assert_error, client_for
from tests.factories import UserFactory
from tests.jobs.test_concurrency import run_concurrently

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def _create(client, **data):
    response = client.post("/api/projects", {"name": "Jigs", **data}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def _move(client, project_id, status):
    return client.post(f"/api/projects/{project_id}/transition", {"status": status}, format="json")


def test_a_project_goes_from_draft_to_completed_recording_processing_time_and_tooling(user):
    with time_machine.travel(T0, tick=False) as clock:
        auth_client = client_for(user)  # a token issued at the pinned time
        # given a new project with the tooling it applies
        project = _create(auth_client, tooling_applied=["baseplate", "scale"])
        assert project["status"] == "draft" and project["tooling_applied"] == ["baseplate", "scale"]
        assert project["processing_time"] == 0 and project["completed_at"] is None
        # when it is processed for 90 s, sent back to draft, then processed 30 s more and completed
        assert _move(auth_client, project["id"], "processing").json()["status"] == "processing"
        clock.shift(timedelta(seconds=90))
        assert _move(auth_client, project["id"], "draft").json()["processing_time"] == 90
        clock.shift(timedelta(hours=1))
        auth_client = client_for(user)  # the first access token has expired by now
        _move(auth_client, project["id"], "processing")
        clock.shift(timedelta(seconds=30))
        done = _move(auth_client, project["id"], "completed").json()
    # then both stays count, and it completed at the last move
    assert done["status"] == "completed" and done["processing_time"] == 120
    assert done["completed_at"] == "2026-11-02T10:02:00Z"
    # and it may be archived, then deleted (a soft delete: 404 from then on)
    auth_client = client_for(user)
    assert _move(auth_client, project["id"], "archived").json()["status"] == "archived"
    assert _move(auth_client, project["id"], "deleted").status_code == 204
    assert_error(auth_client.get(f"/api/projects/{project['id']}"), 404, "not_found")
    assert auth_client.get("/api/projects").json()["count"] == 0
    row = Project.objects.get(pk=project["id"])
    assert row.status == "deleted" and row.deleted_at is not None


def test_an_illegal_move_is_a_409_and_changes_nothing(auth_client):
    project = _create(auth_client)
    assert_error(_move(auth_client, project["id"], "completed"), 409, "invalid_transition")
    assert_error(_move(auth_client, project["id"], "draft"), 409, "invalid_transition")
    row = Project.objects.get(pk=project["id"])
    assert row.status == "draft" and row.completed_at is None


@pytest.mark.parametrize("body", [{}, {"status": "done"}, {"status": 3}, {"status": None}, []])
def test_a_bad_transition_body_is_a_400(auth_client, body):
    project = _create(auth_client)
    response = auth_client.post(f"/api/projects/{project['id']}/transition", body, format="json")
    assert_error(response, 400, "validation_error")
    assert Project.objects.get(pk=project["id"]).status == "draft"


def test_bad_tooling_is_a_400(auth_client):
    for tooling in ("baseplate", [1], ["x" * 65], ["t"] * 21):
        response = auth_client.post("/api/projects", {"name": "P", "tooling_applied": tooling}, format="json")
        assert_error(response, 400, "validation_error")
    assert not Project.objects.exists()


def test_another_users_project_cannot_be_moved_and_anonymous_is_401(auth_client, api_client, other_user):
    project = _create(auth_client)
    assert_error(_move(client_for(other_user), project["id"], "processing"), 404, "not_found")
    assert_error(_move(api_client, project["id"], "processing"), 401)
    assert Project.objects.get(pk=project["id"]).status == "draft"


def test_the_status_cannot_be_written_around_the_transition_service(user):
    project = Project.objects.create(user=user, name="P")
    with pytest.raises(DatabaseError), transaction.atomic():
        Project.objects.filter(pk=project.pk).update(status="completed")
    assert Project.objects.get(pk=project.pk).status == "draft"
    project_transition(project=project, to="processing")
    assert Project.objects.get(pk=project.pk).status == "processing"


@pytest.mark.django_db(transaction=True)
def test_concurrent_completions_complete_once():
    user = UserFactory()
    project = Project.objects.create(user=user, name="P")
    project_transition(project=project, to="processing")
    clients = [client_for(user) for _ in range(6)]
    codes = run_concurrently(6, lambda i: _move(clients[i], project.pk, "completed").status_code)
    assert sorted(codes) == [200] + [409] * 5
    assert Project.objects.get(pk=project.pk).status == "completed"


def test_staff_archive_projects_from_the_admin(admin_client, user):
    project = Project.objects.create(user=user, name="P")
    response = admin_client.post(
        "/admin/jobs/project/", {"action": "archive_projects", "_selected_action": [str(project.pk)]}
    )
    assert response.status_code == 302
    row = Project.objects.get(pk=project.pk)
    assert row.status == "archived" and row.archived_at is not None
