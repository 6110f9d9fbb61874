"""Every changelist runs the same number of queries for 50 rows as for 1: no
per-row query from a foreign key, a __str__ or a display column."""

import pytest
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.admin.builders import BUILDERS

pytestmark = pytest.mark.django_db

REGISTERED = sorted(admin.site._registry, key=lambda model: model._meta.label)


def test_every_registered_model_has_a_builder():
    assert [m._meta.label for m in REGISTERED if m not in BUILDERS] == []


def _changelist(client, model):
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, (model._meta.label, response.status_code)
    return len(queries), len(response.context["cl"].result_list), queries


@pytest.mark.parametrize("model", REGISTERED, ids=lambda model: model._meta.label)
def test_changelist_query_count_does_not_grow_with_rows(admin_client, model):
    build = BUILDERS[model]
    build(1)
    _changelist(admin_client, model)  # warm the per-process caches (content types, ...)
    one, rows_before, _ = _changelist(admin_client, model)

    build(49)
    fifty, rows_after, queries = _changelist(admin_client, model)

    assert rows_after >= 50 and rows_after >= rows_before + 49
    assert fifty == one, "\n".join(q["sql"][:200] for q in queries.captured_queries)


@pytest.mark.parametrize("model", REGISTERED, ids=lambda model: model._meta.label)
def test_change_page_of_every_model_loads(admin_client, model):
    BUILDERS[model](1)
    obj = model._default_manager.order_by("-pk").first()

    response = admin_client.get(
        reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_change", args=[obj.pk])
    )

    assert response.status_code == 200
