from pathlib import Path

from django.conf import settings

from accounts.models import ServiceApiKey
from accounts.services import api_key_create
from config.commands import BaseCommand

KEY_NAME = "demo render worker"


def key_file() -> Path:
    return Path(settings.BASE_DIR) / ".var" / "render-worker.key"


class Command(BaseCommand):
    help = (
        "Make sure the demo render worker (workers/render/, started by `make run`) has a service "
        "key (scope jobs:work, kind video_render), kept in .var/render-worker.key (idempotent)."
    )

    def handle(self, *args, **options):
        path = key_file()
        if path.exists():
            try:
                ServiceApiKey.objects.get_from_key(path.read_text().strip())
                self.stdout.write(f"seed_demo_worker_key: {path} holds a live key.")
                return
            except ServiceApiKey.DoesNotExist:
                pass
        api_key, key = api_key_create(name=KEY_NAME, scopes=["jobs:work"], job_kinds=["video_render"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(key + "\n")
        path.chmod(0o600)
        self.stdout.write(f"seed_demo_worker_key: created {api_key.prefix}… and wrote it to {path}.")
