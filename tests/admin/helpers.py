from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType


def history(obj) -> list[LogEntry]:
    """The admin history ("Recent actions", the object's History page) of `obj`."""
    return list(
        LogEntry.objects.filter(
            content_type=ContentType.objects.get_for_model(obj, for_concrete_model=False),
            object_id=str(obj.pk),
        ).order_by("action_time")
    )


def assert_logged(obj, *, by, contains: list[str]) -> LogEntry:
    entries = history(obj)
    assert len(entries) == 1, [e.change_message for e in entries]
    entry = entries[0]
    assert entry.user_id == by.pk and entry.action_flag == CHANGE
    for text in contains:
        assert text in entry.get_change_message(), (text, entry.get_change_message())
    return entry


def page_messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def form_token(client, url) -> str:
    page = client.get(url)
    assert page.status_code == 200
    return str(page.context["form"].initial["token"])
