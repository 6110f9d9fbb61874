"""The reference render worker as deployed: gunicorn, a plain Celery worker, and the worker as a
separate process holding only its API key. Clips are made by ffmpeg here."""

import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from django.utils import timezone
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.services import api_key_create
from credits.models import CreditBalance, CreditTransaction
from jobs import engine
from jobs.models import Job
from tests.factories import UserFactory
from tests.jobs.conftest import give_credits
from tests.live import REPO, deployed, wait_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("drop_other_connections"),
]


def make_clip(path: Path, *, seconds: float = 1.0, color: str = "red") -> Path:
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"color=c={color}:s=160x120:r=10:d={seconds}",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            str(path),
        ],
        check=True,
    )
    return path


def ffprobe_duration(path: Path) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "default=nw=1:nk=1", str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(out.stdout)


@pytest.fixture
def stack(settings, tmp_path):
    """gunicorn and a plain Celery worker on the test database; yields the base URL."""
    with deployed(settings.MEDIA_ROOT) as base:
        yield base


def start_worker(base: str, key: str, lease_seconds: int = 2) -> subprocess.Popen:
    """The render worker with nothing but the API's URL and its key: no database, no Django."""
    env = {
        "PATH": os.environ["PATH"],
        "RENDER_API_URL": base,
        "RENDER_API_KEY": key,
        "RENDER_LEASE_SECONDS": str(lease_seconds),
        "RENDER_POLL_SECONDS": "0.2",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "workers.render.worker"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop(proc: subprocess.Popen, sig=signal.SIGTERM) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
    proc.wait(timeout=30)


def user_session(base: str):
    user = UserFactory()
    give_credits(user, 10)
    token = str(RefreshToken.for_user(user).access_token)
    return user, httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60)


def create_render(client: httpx.Client, clips: list[Path]) -> dict:
    job = client.post(
        "/api/jobs",
        json={
            "kind": "video_render",
            "requested_count": len(clips),
            "params": {
                "input_count": len(clips),
                "resolution": "320x240",
                "fps": 15,
                "trim": {"start": 0, "end": 1},
            },
        },
    )
    assert job.status_code == 201, job.text
    job = job.json()
    for clip in clips:
        with clip.open("rb") as handle:
            r = client.post(
                f"/api/jobs/{job['id']}/files",
                data={"role": "input"},
                files={"file": (clip.name, handle, "video/mp4")},
            )
        assert r.status_code == 201, r.text
    return job


def poll(client: httpx.Client, job_id: str, status: str) -> dict:
    return wait_for(
        lambda: (body := client.get(f"/api/jobs/{job_id}").json())["status"] == status and body,
        f"the job to be {status}",
    )


def charges(user) -> list[int]:
    return list(
        CreditTransaction.objects.filter(user=user)
        .exclude(type="bonus")
        .order_by("created_at")
        .values_list("amount", flat=True)
    )


def test_a_render_is_claimed_rendered_downloaded_and_charged_once(stack, tmp_path):
    _, key = api_key_create(name="render", scopes=["jobs:work"])
    user, client = user_session(stack)
    clips = [make_clip(tmp_path / "a.mp4", color="red"), make_clip(tmp_path / "b.mp4", color="blue")]
    worker = start_worker(stack, key)
    try:
        job = create_render(client, clips)
        done = poll(client, job["id"], "completed")
        # a second render with one corrupt clip
        corrupt = tmp_path / "corrupt.mp4"
        corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2048))
        second = create_render(client, [clips[0], corrupt])
        second_done = poll(client, second["id"], "completed")
    finally:
        stop(worker)
    assert (done["successful_count"], done["failed_count"]) == (2, 0)
    files = client.get(f"/api/jobs/{job['id']}/files").json()["results"]
    by_role = {f["role"]: f for f in files}
    final = tmp_path / "final.mp4"
    final.write_bytes(client.get(by_role["output"]["download_url"]).content)
    thumb = client.get(by_role["thumbnail"]["download_url"])
    assert thumb.status_code == 200 and thumb.content[:3] == b"\xff\xd8\xff"
    assert 1.5 <= ffprobe_duration(final) <= 2.5  # two clips trimmed to one second each
    assert (second_done["successful_count"], second_done["failed_count"]) == (1, 1)
    # charged 2 + 2 once each (the grant aside), one unit of the second refunded
    assert charges(user) == [-2, -2, 1]
    assert CreditBalance.objects.get(user=user).balance == 7


def test_a_worker_killed_mid_render_loses_its_lease_and_another_finishes_once(stack, tmp_path, settings):
    settings.JOBS_RETRY_BASE_SECONDS = 0.01
    settings.JOBS_RETRY_MAX_SECONDS = 0.02
    _, key = api_key_create(name="render", scopes=["jobs:work"])
    user, client = user_session(stack)
    clips = [make_clip(tmp_path / "a.mp4", seconds=2), make_clip(tmp_path / "b.mp4", seconds=2)]
    first = start_worker(stack, key, lease_seconds=2)
    job = create_render(client, clips)
    try:
        wait_for(
            lambda: Job.objects.filter(pk=job["id"], status__in=["preparing", "processing"]).exists(),
            "the first worker to claim the job",
        )
        stop(first, signal.SIGKILL)  # with its ffmpeg: the whole process group
    finally:
        if first.poll() is None:
            stop(first, signal.SIGKILL)
    assert Job.objects.get(pk=job["id"]).status in ("preparing", "processing")
    # the lease runs out; the rescue (Beat, every minute) makes it a failed attempt
    wait_for(
        lambda: Job.objects.get(pk=job["id"]).lease_expires_at < timezone.now() - timedelta(seconds=0.1),
        "the lease to expire",
    )
    assert engine.jobs_rescue_stale()["leases_expired"] == 1
    second = start_worker(stack, key)
    try:
        done = poll(client, job["id"], "completed")
    finally:
        stop(second)
    assert Job.objects.get(pk=job["id"]).attempts == 2
    assert done["successful_count"] == 2
    assert charges(user) == [-2]


@pytest.mark.django_db(transaction=False)
def test_the_render_worker_imports_nothing_of_the_platform():
    import ast

    source = (REPO / "workers" / "render" / "worker.py").read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported.isdisjoint(
        {"django", "rest_framework", "accounts", "credits", "jobs", "config", "celery"}
    )
    assert "httpx" in imported
