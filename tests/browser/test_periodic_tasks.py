"""The admin's periodic-task form offers every scheduled task in its "Task (registered)" list, so
staff can pick one when they add or edit a schedule."""

import pytest
from django.core.management import call_command
from django_celery_beat.models import PeriodicTask

from config.schedules import SCHEDULES

pytestmark = pytest.mark.django_db(transaction=True)

SCHEDULED_TASKS = {schedule.task for schedule in SCHEDULES}


def registered_task_options(page) -> set[str]:
    return set(page.locator("select#id_regtask option").evaluate_all("options => options.map(o => o.value)"))


def test_the_add_form_lists_every_scheduled_task_as_a_registered_task(staff_page, console, live_server):
    response = staff_page.goto(f"{live_server.url}/admin/django_celery_beat/periodictask/add/")

    assert response is not None and response.status == 200
    options = registered_task_options(staff_page)
    assert SCHEDULED_TASKS - options == set(), options
    assert console.take() == []


def test_the_change_form_of_a_synced_schedule_lists_every_scheduled_task(staff_page, console, live_server):
    # given: the schedules as the release step writes them
    call_command("sync_schedules")
    schedule = SCHEDULES[0]
    task = PeriodicTask.objects.get(name=schedule.name)

    # when
    response = staff_page.goto(f"{live_server.url}/admin/django_celery_beat/periodictask/{task.pk}/change/")

    # then
    assert response is not None and response.status == 200
    options = registered_task_options(staff_page)
    assert SCHEDULED_TASKS - options == set(), options
    assert staff_page.locator("input#id_task").input_value() == schedule.task
    assert console.take() == []
