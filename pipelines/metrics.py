"""The operator's numbers, through Ray's metrics API: they reach the node's Prometheus endpoint (Ray's
metrics export port) and the dashboard's Metrics view, from CLI runs, API jobs and catalogs alike,
because all of them go through :func:`pipelines.runner.run_pipeline`.

- ``screenalytics_stage_seconds`` (histogram; tags stage, action): wall time of each stage;
- ``screenalytics_frames_detected`` / ``screenalytics_faces_embedded`` (counters): work done;
- ``screenalytics_frames_per_second`` (gauge; tag stage): the last detect_track's frames per second;
- ``screenalytics_jobs`` (gauge; tag state): API jobs queued, running, failed, ... (the watchdog's count);
- ``screenalytics_corrections_written`` (counter; tag op): reviewers' corrections through the API;
- ``screenalytics_episodes_done`` (counter; tag status): catalog episodes finished.

Metric objects are made once per process, after Ray is up; recording never fails a run (a process with
no Ray, a test without a metrics agent: nothing is recorded).
"""

from __future__ import annotations

import functools
import logging
from typing import Any

log = logging.getLogger(__name__)
STAGE_SECONDS_BUCKETS = [0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600]
JOB_STATES = ("queued", "running", "succeeded", "failed", "canceled")


@functools.lru_cache(maxsize=1)
def _metrics() -> dict[str, Any]:
    from ray.util import metrics

    return {
        "stage_seconds": metrics.Histogram(
            "screenalytics_stage_seconds", "Wall time of a pipeline stage", boundaries=STAGE_SECONDS_BUCKETS, tag_keys=("stage", "action")
        ),
        "frames": metrics.Counter("screenalytics_frames_detected", "Frames the detector ran on"),
        "faces": metrics.Counter("screenalytics_faces_embedded", "Faces embedded"),
        "fps": metrics.Gauge("screenalytics_frames_per_second", "Frames per second of the last detect_track", tag_keys=("stage",)),
        "jobs": metrics.Gauge("screenalytics_jobs", "API jobs by state", tag_keys=("state",)),
        "corrections": metrics.Counter("screenalytics_corrections_written", "Corrections written through the API", tag_keys=("op",)),
        "episodes": metrics.Counter("screenalytics_episodes_done", "Catalog episodes finished", tag_keys=("status",)),
    }


def _record(what: str, method: str, value: float, tags: dict[str, str] | None = None) -> None:
    try:
        import ray

        if not ray.is_initialized():
            return
        getattr(_metrics()[what], method)(value, tags=tags)
    except Exception as exc:  # noqa: BLE001 - the numbers are for operators; a run never fails for them
        log.debug("metric %s not recorded: %s", what, exc)


def stage_finished(stage: str, action: str, seconds: float, counts: dict[str, float | int]) -> None:
    """A stage computed (or reused): its wall time and the work it did."""
    _record("stage_seconds", "observe", seconds, {"stage": stage, "action": action})
    if action != "computed":
        return
    if stage == "detect_track" and counts.get("frames_sampled"):
        _record("frames", "inc", float(counts["frames_sampled"]))
        if seconds > 0:
            _record("fps", "set", float(counts["frames_sampled"]) / seconds, {"stage": stage})
    if stage == "faces_embed" and counts.get("embedded"):
        _record("faces", "inc", float(counts["embedded"]))


def jobs_by_state(counts: dict[str, int]) -> None:
    for state in JOB_STATES:
        _record("jobs", "set", float(counts.get(state, 0)), {"state": state})


def correction_written(op: str, n: int = 1) -> None:
    _record("corrections", "inc", float(n), {"op": op})


def episode_done(status: str) -> None:
    _record("episodes", "inc", 1.0, {"status": status})
