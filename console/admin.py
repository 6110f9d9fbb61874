"""Admin classes of third-party apps, adjusted to the staff roles (console/roles.py)."""

from django.contrib import admin
from django.urls import reverse
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django_celery_beat.admin import PeriodicTaskAdmin as BeatPeriodicTaskAdmin
from django_celery_beat.models import PeriodicTask

from accounts.admin import UserAdmin as AccountsUserAdmin
from accounts.models import User
from analytics.admin import DailySalesMetricAdmin as AnalyticsDailySalesMetricAdmin
from analytics.admin import PlatformMetricAdmin as AnalyticsPlatformMetricAdmin
from analytics.models import DailySalesMetric, PlatformMetric

SCHEDULE_ACTIONS = ("enable_tasks", "disable_tasks", "toggle_tasks", "run_tasks")


admin.site.unregister(PeriodicTask)


@admin.register(PeriodicTask)
class PeriodicTaskAdmin(BeatPeriodicTaskAdmin):
    """django-celery-beat's, whose enable/disable/toggle/run actions declare no permission (so
    anyone who may view schedules could pause them): here they need the change permission."""

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not self.has_change_permission(request):
            for name in SCHEDULE_ACTIONS:
                actions.pop(name, None)
        return actions


TIMELINE_LIMIT = 15  # newest rows of each kind


def user_timeline(user) -> list[dict]:
    """The user's newest payments, jobs, ledger movements, billing emails sent and staff actions,
    newest first (five queries, each cut to TIMELINE_LIMIT rows)."""
    from django.contrib.admin.models import LogEntry
    from django.contrib.contenttypes.models import ContentType

    from credits.models import CreditTransaction, EmailSent, Payment
    from jobs.models import Job

    events = []
    for payment in (
        Payment.objects.filter(user=user).select_related("package").order_by("-created_at")[:TIMELINE_LIMIT]
    ):
        what = payment.package.name if payment.package_id else "plan"
        events.append(
            {
                "at": payment.created_at,
                "kind": "payment",
                "url": reverse("admin:credits_payment_change", args=[payment.pk]),
                "text": f"{what}: {payment.amount} {payment.currency} via {payment.provider} — "
                f"{payment.get_status_display()}",
            }
        )
    for job in Job.objects.filter(user=user).select_related("kind").order_by("-created_at")[:TIMELINE_LIMIT]:
        reason = f" ({job.error})" if job.error else ""
        events.append(
            {
                "at": job.created_at,
                "kind": "job",
                "url": reverse("admin:jobs_job_change", args=[job.pk]),
                "text": f"{job.kind.code} {job.external_id} — {job.get_status_display()}{reason}",
            }
        )
    for row in CreditTransaction.objects.filter(user=user).order_by("-created_at")[:TIMELINE_LIMIT]:
        events.append(
            {
                "at": row.created_at,
                "kind": "credits",
                "url": None,
                "text": f"{row.get_type_display()} {row.amount:+d} credits (balance {row.balance_after})"
                + (f" — {row.reason}" if row.reason else ""),
            }
        )
    for email in EmailSent.objects.filter(user=user).order_by("-created_at")[:TIMELINE_LIMIT]:
        about = f" (period ending {email.period[:10]})" if email.period else ""
        events.append(
            {
                "at": email.created_at,
                "kind": "email",
                "url": None,
                "text": f"{email.get_kind_display()} email sent{about}",
            }
        )
    user_type = ContentType.objects.get_for_model(user, for_concrete_model=False)
    for entry in (
        LogEntry.objects.filter(content_type=user_type, object_id=str(user.pk))
        .select_related("user")
        .order_by("-action_time")[:TIMELINE_LIMIT]
    ):
        events.append(
            {
                "at": entry.action_time,
                "kind": "staff",
                "url": None,
                "text": f"{entry.user}: {entry.get_change_message() or entry.object_repr}",
            }
        )
    return sorted(events, key=lambda event: event["at"], reverse=True)


admin.site.unregister(User)


@admin.register(User)
class UserAdmin(AccountsUserAdmin):
    """The accounts user page, with the user's timeline (payments, jobs, ledger, emails, staff actions),
    which reads apps above accounts and so is added here."""

    readonly_fields = [*AccountsUserAdmin.readonly_fields, "timeline"]
    fieldsets = (
        *AccountsUserAdmin.fieldsets[:2],
        ("Timeline", {"fields": ("timeline",)}),
        *AccountsUserAdmin.fieldsets[2:],
    )

    @admin.display(description="newest first")
    def timeline(self, obj):
        if obj.pk is None:
            return "—"
        events = user_timeline(obj)
        if not events:
            return "Nothing yet."
        rows = format_html_join(
            "",
            '<tr class="timeline-{}"><td style="white-space:nowrap">{}</td><td>{}</td><td>{}</td></tr>',
            (
                (
                    event["kind"],
                    date_format(event["at"], "DATETIME_FORMAT"),
                    event["kind"],
                    format_html('<a href="{}">{}</a>', event["url"], event["text"])
                    if event["url"]
                    else event["text"],
                )
                for event in events
            ),
        )
        return format_html('<table id="user-timeline">{}</table>', rows)


CHART_DAYS = 90  # the newest days of the filtered list that are charted


class ChartedMetricsAdmin:
    """Charts above an analytics list: per day of the list's filtered rows (its filters, search
    and date drill-down apply), the sum of each charted field over the newest CHART_DAYS days."""

    change_list_template = "admin/analytics/charted_change_list.html"
    chart_fields: list[tuple[str, str]] = []
    # Money fields are charted only while the rows are in one currency (never added across).
    money_fields: set[str] = set()
    currency_path = ""

    def changelist_view(self, request, extra_context=None):
        from django.db.models import Sum

        from console.charts import daily_bars

        response = super().changelist_view(request, extra_context)
        context = getattr(response, "context_data", None)
        if not context or "cl" not in context:
            return response  # a redirect or an error page
        queryset = context["cl"].queryset
        fields = self.chart_fields
        if self.money_fields and queryset.order_by().values(self.currency_path).distinct().count() > 1:
            fields = [(name, title) for name, title in fields if name not in self.money_fields]
        rows = list(
            queryset.order_by()
            .values("date")
            .annotate(**{name: Sum(name) for name, _ in fields})
            .order_by("-date")[:CHART_DAYS]
        )
        rows.reverse()
        context["metric_charts"] = [
            daily_bars(name, title, [(row["date"], row[name] or 0) for row in rows]) for name, title in fields
        ]
        return response


admin.site.unregister(PlatformMetric)
admin.site.unregister(DailySalesMetric)


@admin.register(PlatformMetric)
class PlatformMetricAdmin(ChartedMetricsAdmin, AnalyticsPlatformMetricAdmin):
    chart_fields = [
        ("orders", "Orders"),
        ("new_users", "New users"),
        ("active_users", "Active users"),
        ("credits_purchased", "Credits sold"),
        ("credits_consumed", "Credits consumed"),
        ("jobs_failed", "Jobs failed"),
    ]


@admin.register(DailySalesMetric)
class DailySalesMetricAdmin(ChartedMetricsAdmin, AnalyticsDailySalesMetricAdmin):
    chart_fields = [
        ("orders", "Orders"),
        ("net_revenue", "Net revenue"),
        ("gross_profit", "Gross profit"),
        ("items_sold", "Items sold"),
    ]
    money_fields = {"net_revenue", "gross_profit"}
    currency_path = "shop__currency"
