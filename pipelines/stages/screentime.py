"""Stage 4: screen time per cast member and per identity -> analytics/screentime.{json,csv}."""

from __future__ import annotations

from ..artifacts import RunLayout, read_jsonl, read_model, write_csv, write_model
from ..schemas import CSV_COLUMNS, Assignments, DetectionRow, FaceRow, IdentitiesFile, ShotsFile, StageName, TrackMetrics, TrackRow, VideoMeta
from ..screentime import ScreentimeInputs, compute_screentime, csv_rows
from ..storage import Storage
from .base import RunContext

STAGE = StageName.screentime


def load_assignments(ctx: RunContext) -> Assignments:
    key = ctx.layout.manifest("assignments.json")
    if ctx.storage.exists(key):
        return read_model(ctx.storage, key, Assignments)
    return Assignments(ep_id=ctx.layout.ep_id, run_id=ctx.layout.run_id)


def load_inputs(storage: Storage, layout: RunLayout, assignments: Assignments, with_detections: bool) -> ScreentimeInputs:
    """Everything the screen-time computation reads from a run's artifacts."""
    meta = read_model(storage, layout.manifest("video.json"), VideoMeta)
    metrics = read_model(storage, layout.manifest("track_metrics.json"), TrackMetrics)
    return ScreentimeInputs(
        ep_id=layout.ep_id,
        run_id=layout.run_id,
        fps=meta.fps,
        stride=metrics.stride,
        duration_s=meta.duration_s,
        shots=read_model(storage, layout.manifest("shots.json"), ShotsFile).shots,
        tracks=read_jsonl(storage, layout.manifest("tracks.jsonl"), TrackRow),
        identities=read_model(storage, layout.manifest("identities.json"), IdentitiesFile),
        assignments=assignments,
        faces=read_jsonl(storage, layout.manifest("faces.jsonl"), FaceRow),
        detections=read_jsonl(storage, layout.manifest("detections.jsonl"), DetectionRow) if with_detections else None,
    )


def run(ctx: RunContext) -> dict[str, float]:
    layout, storage = ctx.layout, ctx.storage
    cfg = ctx.config.screentime
    ctx.progress(STAGE, 0, 1, step="screentime")
    inputs = load_inputs(storage, layout, load_assignments(ctx), with_detections=cfg.mode == "faces")
    report = compute_screentime(inputs, cfg, ctx.cast_names)
    write_model(storage, layout.screentime_json, report)
    write_csv(storage, layout.screentime_csv, CSV_COLUMNS, csv_rows(report))
    ctx.progress(STAGE, 1, 1, step="screentime")
    return {"cast_members": len(report.metrics), "identities": len(report.identities)}
