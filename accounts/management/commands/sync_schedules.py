import json

from django.db import transaction
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from config.commands import BaseCommand
from config.schedules import SCHEDULES


class Command(BaseCommand):
    help = (
        "Write the schedules declared in config/schedules.py into django-celery-beat. "
        "Idempotent; a schedule staff disabled in admin stays disabled."
    )

    @transaction.atomic
    def handle(self, *args, **options):
        for item in SCHEDULES:
            defaults = {
                "task": item.task,
                "crontab": None,
                "interval": None,
                "queue": item.queue,
                "kwargs": json.dumps({}),
            }
            if item.interval_seconds:
                defaults["interval"], _ = IntervalSchedule.objects.get_or_create(
                    every=item.interval_seconds, period=IntervalSchedule.SECONDS
                )
            else:
                cron = {
                    "minute": "0",
                    "hour": "*",
                    "day_of_week": "*",
                    "day_of_month": "*",
                    "month_of_year": "*",
                    **item.crontab,
                }
                defaults["crontab"], _ = CrontabSchedule.objects.get_or_create(timezone="UTC", **cron)
            _, created = PeriodicTask.objects.update_or_create(
                name=item.name, defaults=defaults, create_defaults={**defaults, "enabled": True}
            )
            self.stdout.write(f"{'created' if created else 'updated'}: {item.name} → {item.task}")
