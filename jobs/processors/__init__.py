"""Processors by job kind: the code the engine runs for one attempt of a job.

A processor is `fn(ctx: JobContext) -> dict | None`. It runs outside any transaction (so its
progress reports are visible to pollers at once); what it produces (output files, vault
artifacts, counts, result) is written by the engine in the transaction that completes the job,
so a failed attempt leaves nothing half-recorded. Raise `PermanentJobError` for input that can
never succeed (a corrupt file): the job fails at once instead of retrying.
"""

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import F
from django.db.models.functions import Greatest

logger = logging.getLogger(__name__)


class PermanentJobError(Exception):
    """The job cannot succeed whatever the number of attempts."""


@dataclass
class PendingOutput:
    data: bytes
    ext: str
    role: str = "output"
    name: str = ""


@dataclass
class JobContext:
    job: object  # jobs.models.Job, loaded with kind and user
    attempt: int
    outputs: list[PendingOutput] = field(default_factory=list)
    artifacts: list[dict] = field(default_factory=list)

    @property
    def params(self) -> dict:
        return self.job.params if isinstance(self.job.params, dict) else {}

    def progress(self, percent: int) -> None:
        """Record progress (0–100) in its own short statement; it never moves backwards."""
        from jobs.models import Job

        percent = max(0, min(100, int(percent)))
        Job.objects.filter(pk=self.job.pk, attempts=self.attempt).update(
            progress=Greatest(F("progress"), percent)
        )

    def input_file(self):
        return self.job.files.filter(role="input").order_by("created_at").first()

    def add_output(self, data: bytes, ext: str, *, role: str = "output", name: str = "") -> None:
        self.outputs.append(PendingOutput(data=data, ext=ext, role=role, name=name))

    def add_artifact(
        self, type: str, name: str = "", data: dict | None = None, output_index: int | None = None
    ) -> None:
        self.artifacts.append({"type": type, "name": name, "data": data or {}, "output_index": output_index})


Processor = Callable[[JobContext], dict | None]
_REGISTRY: dict[str, Processor] = {}
_loaded = False


def register(*codes: str):
    def decorator(fn: Processor) -> Processor:
        for code in codes:
            _REGISTRY[code] = fn
        return fn

    return decorator


def get_processor(code: str) -> Processor | None:
    _load()
    return _REGISTRY.get(code)


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    importlib.import_module("jobs.processors.models3d")
    for module in filter(None, (m.strip() for m in str(settings.JOBS_EXTRA_PROCESSOR_MODULES).split(","))):
        importlib.import_module(module)
