"""Stage 4: screen time per cast member and per identity -> analytics/screentime.{json,csv}."""

from __future__ import annotations

from ..artifacts import RunLayout, read_jsonl, read_model, write_csv, write_model
from ..corrections import CORRECTIONS_FILE, CorrectionsLog, Resolved, resolve
from ..schemas import CSV_COLUMNS, Assignments, ClusterCentroidsFile, DetectionRow, FaceRow, IdentitiesFile, ShotsFile, StageName, TrackMetrics, TrackRow, VideoMeta
from ..screentime import ScreentimeInputs, compute_screentime, csv_rows
from ..storage import Storage
from .base import RunContext

STAGE = StageName.screentime


def load_corrections(storage: Storage, layout: RunLayout) -> CorrectionsLog:
    key = layout.manifest(CORRECTIONS_FILE)
    if storage.exists(key):
        return read_model(storage, key, CorrectionsLog)
    return CorrectionsLog(ep_id=layout.ep_id, run_id=layout.run_id)


def resolved_inputs(storage: Storage, layout: RunLayout, with_detections: bool) -> tuple[ScreentimeInputs, Resolved]:
    """Screen-time inputs with the human corrections replayed onto the current identities."""
    inputs = load_inputs(storage, layout, Assignments(ep_id=layout.ep_id, run_id=layout.run_id), with_detections)
    centroids_key = layout.manifest("cluster_centroids.json")
    centroids = read_model(storage, centroids_key, ClusterCentroidsFile) if storage.exists(centroids_key) else None
    resolved = resolve(load_corrections(storage, layout), inputs.identities, inputs.tracks, centroids)
    inputs.identities = resolved.identities
    inputs.assignments = resolved.assignments
    return inputs, resolved


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
    inputs, resolved = resolved_inputs(storage, layout, with_detections=cfg.mode == "faces")
    report = compute_screentime(inputs, cfg, ctx.cast_names)
    report.diagnostics["corrections_unattached"] = len(resolved.unattached)
    write_model(storage, layout.screentime_json, report)
    write_csv(storage, layout.screentime_csv, CSV_COLUMNS, csv_rows(report))
    ctx.progress(STAGE, 1, 1, step="screentime")
    return {"cast_members": len(report.metrics), "identities": len(report.identities)}
