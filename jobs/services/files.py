"""A job's files: uploads checked and stored, outputs a processor produced."""

import hashlib
import logging
import uuid

from django.core.files.base import ContentFile
from django.db import transaction

from config.exceptions import InvalidTransition
from jobs import file_services
from jobs.files import OUTPUT_RULES, check_upload, prefix_for
from jobs.models import Artifact, Job, JobFile
from jobs.services.transitions import job_lock
from jobs.states import TERMINAL

logger = logging.getLogger(__name__)


def store_file(job: Job, uploaded, role: str, *, field: str = "file") -> JobFile:
    checked = check_upload(uploaded, role=role, field=field)
    job_file = JobFile(
        job=job,
        role=role,
        prefix=checked.prefix,
        file_type=checked.ext,
        original_name=(getattr(uploaded, "name", "") or "")[:255],
        size=checked.size,
        sha256=checked.sha256,
        content_type=checked.content_type,
    )
    job_file.file.save(f"upload.{checked.ext}", uploaded, save=False)
    job_file.save()
    return job_file


def copy_input_file(job: Job, source: JobFile) -> JobFile:
    """Point a retry job at its original's stored input (same bytes, no copy in storage)."""
    return JobFile.objects.create(
        job=job,
        role=source.role,
        prefix=source.prefix,
        file=source.file.name,
        original_name=source.original_name,
        file_type=source.file_type,
        size=source.size,
        sha256=source.sha256,
        content_type=source.content_type,
    )


@transaction.atomic
def job_file_add(*, job: Job, uploaded, role: str) -> JobFile:
    """Attach a checked file to a job that has not finished (size, type and sha256 recorded).

    Locks the job row, then the user row (storage quota): the lock order. Raises a 400
    validation_error for a refused file, InvalidTransition (409) on a finished job, 413
    storage_quota_exceeded or 400 too_many_files (jobs.file_services).
    """
    job = job_lock(job_id=job.pk)
    file_services.storage_quota_reserve(user_id=job.user_id, size=uploaded.size or 0)
    if job.status in TERMINAL:
        raise InvalidTransition(f"Files cannot be added to a {job.status} job.")
    file_services.job_files_limit_check(job=job)
    return store_file(job, uploaded, role)


def job_outputs_write(*, job: Job, outputs) -> list[JobFile]:
    """Write a processor's output files to storage, before and outside the transaction that will
    record them (no row lock is held while storage works). Returns the JobFile rows, unsaved,
    whose files now exist; record them with `job_outputs_record`, or remove them with
    `job_outputs_discard` if that transaction does not commit. If a write fails, the files this
    call already wrote are removed and the error is raised."""
    written: list[JobFile] = []
    try:
        for item in outputs:
            rule = OUTPUT_RULES[item.ext]
            job_file = JobFile(
                job=job,
                role=item.role,
                prefix=prefix_for(rule.family, item.role),
                file_type=item.ext,
                original_name=item.name,
                size=len(item.data),
                sha256=hashlib.sha256(item.data).hexdigest(),
                content_type=rule.content_type,
            )
            job_file.file.save(f"{uuid.uuid4().hex}.{item.ext}", ContentFile(item.data), save=False)
            written.append(job_file)
    except BaseException:
        job_outputs_discard(files=written)
        raise
    return written


def job_outputs_discard(*, files: list[JobFile]) -> None:
    """Remove files written by `job_outputs_write` whose rows were never committed. Never
    raises: a file that cannot be removed is logged (it is referenced by no row)."""
    for job_file in files:
        try:
            job_file.file.storage.delete(job_file.file.name)
        except Exception:
            logger.exception("Could not remove the unrecorded output file %s", job_file.file.name)


def job_outputs_record(*, job: Job, files: list[JobFile], artifacts) -> None:
    """Insert the rows of output files already written by `job_outputs_write`, and the vault
    artifacts, for `job` (inside the completing transaction, which holds the job's row lock)."""
    stored = []
    for job_file in files:
        job_file.job = job
        job_file.save()
        stored.append(job_file)
    Artifact.objects.bulk_create(
        [
            Artifact(
                job=job,
                user_id=job.user_id,
                type=a["type"][:32],
                name=a["name"][:255],
                data=a["data"],
                file=stored[a["output_index"]] if a.get("output_index") is not None else None,
            )
            for a in artifacts
        ]
    )
