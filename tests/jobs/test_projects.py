"""/api/projects: a user's named groups of their own models."""

import uuid

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from jobs.models import Project, ProjectModel
from tests.conftest import assert_error
from tests.jobs.model_helpers import import_model

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_models(user):
    return import_model(user), import_model(user)


def create(client, **data):
    return client.post("/api/projects", data, format="json")


def test_project_lifecycle_create_read_update_delete(user, auth_client, two_models):
    a, b = two_models
    # create
    response = create(auth_client, name="  Printer parts ", description="For the Prusa", models=[str(a.pk)])
    assert response.status_code == 201, response.content
    project = response.json()
    assert (project["name"], project["description"], project["models"]) == (
        "Printer parts",
        "For the Prusa",
        [str(a.pk)],
    )
    path = f"/api/projects/{project['id']}"
    assert auth_client.get(path).json() == project
    # PATCH changes what it names; `models` replaces the set
    patched = auth_client.patch(path, {"models": [str(b.pk), str(a.pk), str(b.pk)]}, format="json")
    assert patched.status_code == 200
    assert patched.json()["name"] == "Printer parts"
    assert set(patched.json()["models"]) == {str(a.pk), str(b.pk)}
    assert ProjectModel.objects.filter(project_id=project["id"]).count() == 2
    # PUT replaces everything (omitted description and models are emptied)
    put = auth_client.put(path, {"name": "Renamed"}, format="json")
    assert (put.json()["name"], put.json()["description"], put.json()["models"]) == ("Renamed", "", [])
    # delete: the project goes, its models stay
    assert auth_client.delete(path).status_code == 204
    assert_error(auth_client.get(path), 404, "not_found")
    assert auth_client.get("/api/models").json()["count"] == 2


def test_another_users_model_cannot_be_added_and_is_not_revealed(user, auth_client, other_user, two_models):
    theirs = import_model(other_user)
    unknown = uuid.uuid4()
    for model_id in (theirs.pk, unknown):
        error = assert_error(create(auth_client, name="X", models=[str(model_id)]), 400, "validation_error")
        # the same answer for a model of someone else and one that does not exist
        assert error["fields"]["models"] == [f"Unknown model id(s): {model_id}."]
    assert not Project.objects.exists()
    # nor by update: the project is left as it was
    project = create(auth_client, name="Mine", models=[str(two_models[0].pk)]).json()
    response = auth_client.patch(
        f"/api/projects/{project['id']}", {"name": "Changed", "models": [str(theirs.pk)]}, format="json"
    )
    assert_error(response, 400, "validation_error")
    assert auth_client.get(f"/api/projects/{project['id']}").json() == project


def test_another_users_project_is_a_404_for_every_method(user, auth_client, other_client):
    project = create(auth_client, name="Mine").json()
    path = f"/api/projects/{project['id']}"
    for response in (
        other_client.get(path),
        other_client.patch(path, {"name": "Stolen"}, format="json"),
        other_client.put(path, {"name": "Stolen"}, format="json"),
        other_client.delete(path),
    ):
        assert_error(response, 404, "not_found")
    assert other_client.get("/api/projects").json()["count"] == 0
    assert auth_client.get(path).json() == project


def test_projects_need_authentication(api_client):
    path = f"/api/projects/{uuid.uuid4()}"
    for response in (
        api_client.get("/api/projects"),
        api_client.post("/api/projects", {"name": "x"}, format="json"),
        api_client.get(path),
        api_client.patch(path, {"name": "x"}, format="json"),
        api_client.delete(path),
    ):
        assert_error(response, 401)


HOSTILE = [
    [],
    "a string",
    None,
    {},
    {"name": ""},
    {"name": "   "},
    {"name": 5},
    {"name": ["x"]},
    {"name": "x" * 121},
    {"name": "nul\x00"},
    {"name": "ok", "description": 5},
    {"name": "ok", "description": "d" * 2001},
    {"name": "ok", "models": "not a list"},
    {"name": "ok", "models": ["not-a-uuid"]},
    {"name": "ok", "models": [5]},
    {"name": "ok", "models": [None]},
    {"name": "ok", "models": [{"id": "x"}]},
    {"name": "ok", "models": [str(uuid.uuid4())] * 501},
]


@pytest.mark.parametrize("data", HOSTILE)
def test_hostile_project_bodies_are_a_400_and_change_nothing(user, auth_client, data):
    existing = create(auth_client, name="Kept").json()
    responses = [
        auth_client.post("/api/projects", data, format="json"),
        auth_client.put(f"/api/projects/{existing['id']}", data, format="json"),
    ]
    if isinstance(data, dict) and data:  # PATCH may omit fields, so {} is a valid no-op there
        responses.append(auth_client.patch(f"/api/projects/{existing['id']}", data, format="json"))
    for response in responses:
        assert_error(response, 400)
    assert Project.objects.count() == 1
    assert auth_client.get(f"/api/projects/{existing['id']}").json() == existing


def test_malformed_json_and_ids_are_4xx_envelopes(auth_client):
    assert_error(auth_client.generic("POST", "/api/projects", "{bad", content_type="application/json"), 400)
    assert_error(auth_client.get("/api/projects/not-a-uuid"), 404)
    assert_error(auth_client.get("/api/projects?page=abc"), 404)


def test_the_project_list_is_paginated_with_a_constant_number_of_queries(user, auth_client, two_models):
    ids = [str(m.pk) for m in two_models]
    create(auth_client, name="one", models=ids)
    with CaptureQueriesContext(connection) as one:
        auth_client.get("/api/projects")
    for i in range(4):
        create(auth_client, name=f"p{i}", models=ids)
    with CaptureQueriesContext(connection) as five:
        page = auth_client.get("/api/projects?page_size=2")
    assert len(five.captured_queries) == len(one.captured_queries)
    listed = page.json()
    assert listed["count"] == 5 and len(listed["results"]) == 2 and listed["next"]
    assert [p["name"] for p in listed["results"]] == ["p3", "p2"]
    assert all(set(p["models"]) == set(ids) for p in listed["results"])
    cursor = auth_client.get("/api/projects?cursor=&page_size=2").json()
    assert [p["name"] for p in cursor["results"]] == ["p3", "p2"] and cursor["count"] is None


def test_the_database_refuses_another_users_model_in_a_project(user, other_user):
    project = Project.objects.create(user=user, name="Mine")
    theirs = import_model(other_user)
    with pytest.raises(IntegrityError), transaction.atomic():
        ProjectModel.objects.create(project=project, job=theirs)
    assert not ProjectModel.objects.exists()
