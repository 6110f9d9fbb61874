"""The reference render worker: a small program outside the platform (HTTP and a service API
key only, no Django) that claims `video_render` jobs, renders them with ffmpeg and reports.

    RENDER_API_URL=http://127.0.0.1:8000 RENDER_API_KEY=<key with scope jobs:work> \
        python -m workers.render.worker

Params of a job: {clips: [input file ids] (default: every input, in upload order), trim:
{start, end} seconds applied to each clip, resolution: "WxH" (default 1280x720), fps (default
30), audio (default false)}. Each clip that ffprobe cannot decode is a failed unit; the rest are
concatenated, scaled, encoded to H.264 MP4, thumbnailed (JPEG), uploaded and reported with
ffprobe's duration, size and codec. While ffmpeg runs, a heartbeat thread keeps the lease.
"""

import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

logger = logging.getLogger("render-worker")
KIND = "video_render"


class LeaseLost(Exception):
    pass


class Api:
    def __init__(self, base_url: str, api_key: str, timeout: float = 60.0):
        self.http = httpx.Client(
            base_url=base_url.rstrip("/"), headers={"Authorization": f"Api-Key {api_key}"}, timeout=timeout
        )

    def _post(self, path: str, **kwargs) -> dict:
        response = self.http.post(path, **kwargs)
        if response.status_code == 409:
            raise LeaseLost(response.text)
        response.raise_for_status()
        return response.json()

    def claim(self, *, lease_seconds: int, max_jobs: int = 1) -> list[dict]:
        body = {"kinds": [KIND], "max": max_jobs, "lease_seconds": lease_seconds}
        return self._post("/api/worker/claim", json=body)["jobs"]

    def heartbeat(self, job_id: str, attempt: int, progress: int, lease_seconds: int) -> dict:
        body = {"attempt": attempt, "progress": progress, "lease_seconds": lease_seconds}
        return self._post(f"/api/worker/jobs/{job_id}/heartbeat", json=body)

    def download(self, url: str, target: Path) -> None:
        # The signed URL needs no key: a plain client, so the key is never sent with it.
        with httpx.stream("GET", str(self.http.base_url.join(url)), timeout=120) as response:
            response.raise_for_status()
            with target.open("wb") as handle:
                for chunk in response.iter_bytes():
                    handle.write(chunk)

    def upload(self, job_id: str, attempt: int, role: str, path: Path, content_type: str) -> dict:
        with path.open("rb") as handle:
            return self._post(
                f"/api/worker/jobs/{job_id}/files",
                data={"attempt": str(attempt), "role": role},
                files={"file": (path.name, handle, content_type)},
            )

    def report(self, job_id: str, attempt: int, **body) -> dict:
        return self._post(f"/api/worker/jobs/{job_id}/report", json={"attempt": attempt, **body})


def probe(path: Path) -> dict | None:
    """ffprobe's view of a media file: {duration, codec, size}, or None if it cannot be decoded."""
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        return None
    info = json.loads(result.stdout or "{}")
    video = [s for s in info.get("streams", []) if s.get("codec_type") == "video"]
    if not video:
        return None
    duration = float(info.get("format", {}).get("duration") or video[0].get("duration") or 0)
    return {"duration": duration, "codec": video[0].get("codec_name", ""), "size": path.stat().st_size}


def decodable(path: Path) -> bool:
    """Whether ffmpeg can decode the clip's first second of video (ffprobe alone accepts some
    truncated files)."""
    if probe(path) is None:
        return False
    result = subprocess.run(
        ["ffmpeg", "-v", "error", "-xerror", "-i", str(path), "-t", "1", "-f", "null", "-"],
        capture_output=True,
    )
    return result.returncode == 0


def render(clips: list[Path], out: Path, thumb: Path, *, params: dict) -> None:
    width, height = (int(v) for v in str(params.get("resolution") or "1280x720").lower().split("x"))
    fps = int(params.get("fps") or 30)
    trim = params.get("trim") or {}
    inputs: list[str] = []
    for clip in clips:
        if trim.get("start"):
            inputs += ["-ss", str(float(trim["start"]))]
        if trim.get("end"):
            inputs += ["-to", str(float(trim["end"]))]
        inputs += ["-i", str(clip)]
    parts = "".join(
        f"[{i}:v]scale={width}:{height}:force_original_aspect_ratio=decrease,"
        f"pad={width}:{height}:(ow-iw)/2:(oh-ih)/2,setsar=1,fps={fps}[v{i}];"
        for i in range(len(clips))
    )
    joined = "".join(f"[v{i}]" for i in range(len(clips)))
    graph = f"{parts}{joined}concat=n={len(clips)}:v=1:a=0[out]"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            *inputs,
            "-filter_complex",
            graph,
            "-map",
            "[out]",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-preset",
            "veryfast",
            "-movflags",
            "+faststart",
            "-an",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(out), "-frames:v", "1", "-q:v", "3", str(thumb)],
        check=True,
        capture_output=True,
    )


class Heartbeat(threading.Thread):
    """Keeps the lease while the job renders; stops on lease loss."""

    def __init__(self, api: Api, job: dict, lease_seconds: int):
        super().__init__(daemon=True)
        self.api, self.job, self.lease = api, job, lease_seconds
        self.progress = 10
        self.lost = threading.Event()
        self.stopped = threading.Event()

    def run(self):
        while not self.stopped.wait(max(0.2, self.lease / 3)):
            try:
                self.api.heartbeat(self.job["id"], self.job["attempt"], self.progress, self.lease)
            except LeaseLost:
                self.lost.set()
                return
            except httpx.HTTPError:
                logger.warning("heartbeat failed for job %s; retrying", self.job["id"])


def run_job(api: Api, job: dict, *, lease_seconds: int) -> str:
    job_id, attempt = job["id"], job["attempt"]
    api.heartbeat(job_id, attempt, 5, lease_seconds)
    beat = Heartbeat(api, job, lease_seconds)
    beat.start()
    try:
        with tempfile.TemporaryDirectory(prefix="render-") as tmp:
            workdir = Path(tmp)
            files = {f["id"]: f for f in job["input_files"]}
            wanted = job["params"].get("clips") or list(files)
            good, failed = [], 0
            for i, file_id in enumerate(wanted):
                source = files.get(str(file_id))
                target = workdir / f"clip{i}.bin"
                if source is None:
                    failed += 1
                    continue
                api.download(source["download_url"], target)
                if decodable(target):
                    good.append(target)
                else:
                    failed += 1
            beat.progress = 30
            requested = int(job.get("requested_count") or 1)
            failed = min(failed, requested)
            if not good:
                api.report(
                    job_id,
                    attempt,
                    status="failed",
                    error="No input clip could be decoded.",
                    failed_count=requested,
                )
                return "failed"
            out, thumb = workdir / "final.mp4", workdir / "thumbnail.jpg"
            render(good, out, thumb, params=job["params"])
            if beat.lost.is_set():
                raise LeaseLost(job_id)
            beat.progress = 90
            info = probe(out) or {}
            api.upload(job_id, attempt, "output", out, "video/mp4")
            api.upload(job_id, attempt, "thumbnail", thumb, "image/jpeg")
            api.report(
                job_id,
                attempt,
                status="completed",
                successful_count=requested - failed,
                failed_count=failed,
                metrics={
                    "duration": info.get("duration"),
                    "size": info.get("size"),
                    "codec": info.get("codec"),
                    "clips": len(good),
                },
            )
            return "completed"
    finally:
        beat.stopped.set()


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s render-worker %(message)s")
    base_url = os.environ.get("RENDER_API_URL", "http://127.0.0.1:8000")
    api_key = os.environ["RENDER_API_KEY"]
    lease_seconds = int(os.environ.get("RENDER_LEASE_SECONDS", "60"))
    idle = float(os.environ.get("RENDER_POLL_SECONDS", "2"))
    once = os.environ.get("RENDER_ONCE") == "1"
    api = Api(base_url, api_key)
    while True:
        try:
            jobs = api.claim(lease_seconds=lease_seconds)
        except httpx.HTTPError as exc:
            logger.warning("claim failed: %s", exc)
            jobs = []
        for job in jobs:
            try:
                logger.info(
                    "job %s attempt %s: %s",
                    job["id"],
                    job["attempt"],
                    run_job(api, job, lease_seconds=lease_seconds),
                )
            except LeaseLost:
                logger.warning("job %s attempt %s lost its lease; dropped", job["id"], job["attempt"])
            except (httpx.HTTPError, subprocess.CalledProcessError, ValueError) as exc:
                logger.warning("job %s attempt %s failed: %r", job["id"], job["attempt"], exc)
                try:
                    api.report(
                        job["id"], job["attempt"], status="failed", retry=True, error=type(exc).__name__
                    )
                except (LeaseLost, httpx.HTTPError):
                    pass
        if once:
            return 0
        if not jobs:
            time.sleep(idle)


if __name__ == "__main__":
    sys.exit(main())
