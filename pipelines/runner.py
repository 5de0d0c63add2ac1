"""Run stages of one episode run, reusing what is already done.

A stage is reused when its marker says ``succeeded`` with the same fingerprint. A fingerprint covers
the stage's version and settings, the models, the upstream stage's fingerprint and, for detect_track,
the video's content id; for screentime, the human corrections. So a changed setting recomputes its
stage and, through the chain of fingerprints, everything after it. When a stage recomputes, the
markers after it are removed, so nobody mistakes their outputs for current ones.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from actors.models.registry import check_models, embedder_identity

from .artifacts import RunLayout, read_marker, read_model, write_model
from .corrections import CORRECTIONS_FILE
from .config import PipelineConfig, ResolvedConfig, resolve_config
from .ids import validate_ep_id, validate_run_id
from .schemas import STAGE_ORDER, ScreentimeReport, StageMarker, StageName, StageState, VideoMeta, utc_now
from .stages import cluster, detect_track, faces_embed, screentime
from .stages.base import STAGE_VERSIONS, MissingInputs, ProgressSink, RunContext, fingerprint, no_progress
from .storage import Storage, parse_s3_uri
from .video import probe_video

DEFAULT_RUN_ID = "main"

STAGE_OUTPUTS: dict[StageName, tuple[str, ...]] = {
    StageName.detect_track: ("detections.jsonl", "tracks.jsonl", "shots.json", "video.json", "track_metrics.json"),
    StageName.faces_embed: ("faces.jsonl", "track_reps.jsonl"),
    StageName.cluster: ("identities.json", "cluster_centroids.json"),
    StageName.screentime: ("analytics/screentime.json", "analytics/screentime.csv"),
}
EXECUTION_ONLY = {"detect_track": {"batch_size", "num_detectors"}}


@dataclass
class StageOutcome:
    stage: StageName
    action: str  # computed | reused
    seconds: float
    counts: dict[str, float] = field(default_factory=dict)


@dataclass
class RunResult:
    ep_id: str
    run_id: str
    storage_uri: str
    manifests: str
    outcomes: list[StageOutcome]
    report: Optional[ScreentimeReport]
    resolved: ResolvedConfig


def stage_settings(config: PipelineConfig, stage: StageName) -> dict[str, Any]:
    section = getattr(config, stage.value).model_dump()
    for name in EXECUTION_ONLY.get(stage.value, ()):
        section.pop(name, None)
    return section


def stage_fingerprint(
    storage: Storage, layout: RunLayout, config: PipelineConfig, stage: StageName, upstream: str | None, video: VideoMeta | None
) -> str:
    extra: list[Any] = []
    if stage is StageName.detect_track:
        assert video is not None
        extra = [video.content_id, _model_settings(config)]
    elif stage is StageName.faces_embed:
        extra = [embedder_identity(config.models)[0], _model_settings(config)]
    elif stage is StageName.screentime:
        key = layout.manifest(CORRECTIONS_FILE)
        extra = [storage.read_text(key) if storage.exists(key) else None]
    return fingerprint(stage.value, STAGE_VERSIONS[stage], stage_settings(config, stage), upstream, extra)


def _model_settings(config: PipelineConfig) -> dict[str, Any]:
    """Model settings that can change results (the device cannot: same graphs, same numbers)."""
    return {k: v for k, v in config.models.model_dump().items() if k != "device"}


def resolve_video_source(source: str, cache_dir: Path) -> Path:
    """A local path as is; an ``s3://`` URI is downloaded (once, atomically) into ``cache_dir``."""
    if source.startswith("s3://"):
        import os

        import boto3

        from .storage import download_s3_object

        bucket, key = parse_s3_uri(source)
        dest = cache_dir / "s3" / bucket / key
        if not dest.is_file():
            client = boto3.client("s3", endpoint_url=os.environ.get("S3_ENDPOINT_URL") or None)
            download_s3_object(client, bucket, key, dest)
        return dest
    return Path(source)


def _outputs_exist(storage: Storage, layout: RunLayout, stage: StageName) -> bool:
    return all(storage.exists(layout.manifest(name)) for name in STAGE_OUTPUTS[stage])


def run_pipeline(
    *,
    storage: Storage,
    ep_id: str,
    run_id: str | None = None,
    video: str | None = None,
    profile: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    stages: Sequence[StageName] | None = None,
    force: bool = False,
    progress: ProgressSink = no_progress,
    cancel_event: threading.Event | None = None,
    cast_names: dict[str, str] | None = None,
    cache_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> RunResult:
    validate_ep_id(ep_id)
    run_id = validate_run_id(run_id or DEFAULT_RUN_ID)
    resolved = resolve_config(profile, overrides, environ)
    config = resolved.config
    check_models(config.models)
    wanted = list(STAGE_ORDER) if not stages else [s for s in STAGE_ORDER if s in set(stages)]
    layout = RunLayout(ep_id, run_id)

    meta: VideoMeta | None = None
    if StageName.detect_track in wanted:
        if not video:
            raise MissingInputs(StageName.detect_track, ["a video (path or s3:// URI)"])
        local = resolve_video_source(video, cache_dir or Path.home() / ".cache" / "screenalytics")
        meta = probe_video(local)

    from .ray_env import ensure_ray

    ensure_ray()
    if StageName.faces_embed in wanted:
        from actors.model_actors import start_embedder_pool

        start_embedder_pool(config.models.model_dump())  # loads while detect_track runs
    ctx = RunContext(storage=storage, layout=layout, config=config, progress=progress, cancel_event=cancel_event, cast_names=cast_names or {})
    outcomes: list[StageOutcome] = []
    upstream: str | None = None
    for stage in STAGE_ORDER:
        marker = read_marker(storage, layout, stage)
        if stage not in wanted:  # not run now: later stages chain to its recorded fingerprint, if any
            upstream = marker.fingerprint if marker and marker.state is StageState.succeeded else None
            continue
        if stage is not StageName.detect_track and upstream is None:
            prev = STAGE_ORDER[STAGE_ORDER.index(stage) - 1]
            raise MissingInputs(stage, [f"a finished {prev.value} stage for {ep_id}/{run_id}"])
        fp = stage_fingerprint(storage, layout, config, stage, upstream, meta)
        started = time.time()
        if not force and marker and marker.state is StageState.succeeded and marker.fingerprint == fp and _outputs_exist(storage, layout, stage):
            outcomes.append(StageOutcome(stage, "reused", 0.0, dict(marker.counts)))
            progress(stage, 1, 1, step="reused")
            upstream = fp
            continue
        for later in STAGE_ORDER[STAGE_ORDER.index(stage) + 1 :]:
            _invalidate(storage, layout, later)
        running = StageMarker(stage=stage, state=StageState.running, fingerprint=fp, config=stage_settings(config, stage), started_at=utc_now())
        write_model(storage, layout.marker(stage), running)
        try:
            counts = detect_track.run(ctx, meta) if stage is StageName.detect_track else _MODULES[stage].run(ctx)  # type: ignore[arg-type]
        except BaseException as exc:
            from .stages.base import Canceled

            state = StageState.canceled if isinstance(exc, (Canceled, KeyboardInterrupt)) else StageState.failed
            write_model(storage, layout.marker(stage), running.model_copy(update={"state": state, "finished_at": utc_now(), "error": str(exc)[:2000]}))
            raise
        done = running.model_copy(update={"state": StageState.succeeded, "finished_at": utc_now(), "counts": counts})
        write_model(storage, layout.marker(stage), done)
        outcomes.append(StageOutcome(stage, "computed", time.time() - started, counts))
        upstream = fp

    report = None
    if storage.exists(layout.screentime_json) and StageName.screentime in wanted:
        report = read_model(storage, layout.screentime_json, ScreentimeReport)
    return RunResult(ep_id, run_id, storage.uri, layout.manifests, outcomes, report, resolved)


def _invalidate(storage: Storage, layout: RunLayout, stage: StageName) -> None:
    key = layout.marker(stage)
    if storage.exists(key):
        storage.delete_prefix(key)


_MODULES = {
    StageName.faces_embed: faces_embed,
    StageName.cluster: cluster,
    StageName.screentime: screentime,
}

__all__ = ["run_pipeline", "RunResult", "StageOutcome", "DEFAULT_RUN_ID"]
