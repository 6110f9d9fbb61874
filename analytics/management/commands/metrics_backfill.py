from analytics import services
from config.commands import BaseCommand


class Command(BaseCommand):
    help = (
        "Generate the shop and platform metrics of every closed day that has none yet (since the "
        "first data on a fresh install). Idempotent: run by the release step and `make setup`; "
        "the nightly task does the same."
    )

    def handle(self, *args, **options):
        def progress(start, end, index, total):
            bar = "#" * (20 * index // total)
            self.stdout.write(f"\r[{bar:<20}] {index}/{total} {start}..{end}", ending="")
            self.stdout.flush()

        totals = services.metrics_backfill(progress=progress)
        if not totals:
            self.stdout.write("metrics: every closed day is generated already")
            return
        self.stdout.write("")
        self.stdout.write(
            self.style.SUCCESS("rows written: " + ", ".join(f"{k} {v}" for k, v in sorted(totals.items())))
        )
