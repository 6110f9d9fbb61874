"""Building blocks for the staff operations and lists of every app's admin.

A staff operation (grant credits, refund, retry a job, adjust stock, move an order, change a
plan) is one admin view: GET shows its form (a confirmation page), POST validates the form and
calls the one service the API uses. A refusal by the service (ApplicationError: insufficient
balance, illegal transition, ...) becomes an error on the form, never a 500; success is written
to the admin's history (LogEntry) with who did it, what and the reason they typed.
"""

import csv
import re
from collections.abc import Callable

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.http import HttpResponseRedirect, StreamingHttpResponse
from django.template.response import TemplateResponse
from import_export.admin import ExportMixin
from import_export.formats.base_formats import CSV
from import_export.signals import post_export

from config.exceptions import ApplicationError

REASON_HELP = "Why: written to the admin history with your name."
ALREADY_DONE = "Nothing changed: this was already done (the same form was submitted twice)."


class OperationForm(forms.Form):
    """Every staff operation asks why; the reason goes to the admin history (and to the ledger
    or stock history where the service records one)."""

    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 2}), help_text=REASON_HELP)

    def clean_reason(self):
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("Give a reason.")
        return reason


def operation_view(
    model_admin: admin.ModelAdmin,
    request,
    *,
    obj,
    form_class: type[forms.Form],
    perform: Callable[[dict], str | None],
    title: str,
    form_id: str,
    success_url: str,
    allowed: bool,
    log_obj=None,
    form_kwargs: dict | None = None,
    initial: dict | None = None,
    template: str = "admin/operation_form.html",
    extra_context: dict | None = None,
):
    """Run one staff operation.

    `perform(cleaned_data)` calls the service and returns the sentence recorded in the admin
    history and shown to the staff member, or None when the service had nothing to do (the
    same form submitted twice): then nothing is logged. The service call and its history entry
    commit together. Only a POST performs it (CSRF-checked by the middleware); a GET renders
    the form. ApplicationError and Django's ValidationError raised by the service become form
    errors (status 200, nothing changed). `allowed` False is a 403.
    """
    if not allowed:
        raise PermissionDenied
    form_kwargs = form_kwargs or {}
    if request.method == "POST":
        form = form_class(request.POST, **form_kwargs)
        if form.is_valid():
            try:
                with transaction.atomic():
                    message = perform(form.cleaned_data)
                    if message is not None:
                        model_admin.log_change(request, log_obj if log_obj is not None else obj, message)
            except ApplicationError as exc:
                form.add_error(None, exc.message)
            except DjangoValidationError as exc:
                form.add_error(None, exc.messages)
            else:
                if message is None:
                    model_admin.message_user(request, ALREADY_DONE, messages.INFO)
                else:
                    model_admin.message_user(request, message, messages.SUCCESS)
                return HttpResponseRedirect(success_url)
        model_admin.message_user(request, "Nothing was changed: see the errors below.", messages.ERROR)
    else:
        form = form_class(initial=initial, **form_kwargs)
    opts = model_admin.model._meta
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "form": form,
        "form_id": form_id,
        "object": obj,
        "opts": opts,
        "app_label": opts.app_label,
        "cancel_url": success_url,
        **(extra_context or {}),
    }
    return TemplateResponse(request, template, context)


def with_reason(message: str, reason: str) -> str:
    return f"{message} Reason: {reason}"


class _Echo:
    """A file-like object whose write returns what it was given: csv.writer formats one row."""

    def write(self, value):
        return value


# A cell a spreadsheet would run as a formula (CSV injection): shown as text instead.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


# A plain signed number ("-2", "+1.50") is data, not a formula: it stays as it is.
PLAIN_NUMBER = re.compile(r"[-+]?\d+(\.\d+)?")


def csv_cell(value) -> str:
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_PREFIXES) and not PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


class CsvExportMixin(ExportMixin):
    """CSV export of what the changelist shows (its filters and search apply), export only:
    no import view is mounted. Staff who may view the list may export it.

    The file is streamed: rows are read in chunks (the resource's `iter_queryset`) and written
    as they come, so exporting a million-row ledger holds one chunk in memory, not the whole
    file (django-import-export builds the whole dataset, then the whole file). Cells that a
    spreadsheet would run as formulas start with a quote."""

    export_formats = [CSV]
    skip_export_form = True

    def has_export_permission(self, request):
        return self.has_view_permission(request)

    def export_action(self, request):
        """The export view (django-import-export's, streamed): the changelist's rows as CSV."""
        if not self.has_export_permission(request):
            raise PermissionDenied
        queryset = self.get_export_queryset(request)
        file_format = self.get_export_formats()[0]()
        resource_class = self.choose_export_resource_class(None, request)
        resource = resource_class(**self.get_export_resource_kwargs(request))
        queryset = resource.filter_export(queryset)
        writer = csv.writer(_Echo())

        def lines():
            yield writer.writerow(resource.get_export_headers())
            for instance in resource.iter_queryset(queryset):
                yield writer.writerow([csv_cell(value) for value in resource.export_resource(instance)])

        response = StreamingHttpResponse(lines(), content_type=file_format.get_content_type())
        filename = self.get_export_filename(request, queryset, file_format)
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        post_export.send(sender=None, model=self.model)
        return response


def key_value_table(value) -> str:
    """A JSON value (preferences, payment metadata) as a readable key/value table: nested
    objects become nested tables, lists are joined, an empty value is "—". Escaped."""
    from django.utils.html import format_html, format_html_join

    if isinstance(value, dict):
        if not value:
            return "—"
        rows = format_html_join(
            "",
            '<tr><th scope="row" style="width:30%">{}</th><td>{}</td></tr>',
            ((key.replace("_", " "), key_value_table(item)) for key, item in sorted(value.items())),
        )
        return format_html('<table class="key-value">{}</table>', rows)
    if isinstance(value, list):
        return format_html_join(", ", "{}", ((key_value_table(item),) for item in value)) if value else "—"
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return format_html("{}", value)
