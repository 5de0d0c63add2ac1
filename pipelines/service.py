"""What the HTTP API asks of the pipelines: the one surface ``serve_app`` imports, beside the id rules
(:mod:`pipelines.ids`), the artifact schemas (:mod:`pipelines.schemas`), storage (:mod:`pipelines.storage`)
and the command line it extends (:mod:`pipelines.cli`); ``tests/test_architecture.py`` holds it to those.

Where a route composes several parts of the pipelines (the review bundle, a correction with the
facebank and season voices kept in step, a run's integrity), the composition is a function here, so
the route only translates HTTP. The rest are the pipelines' own names, re-exported by area.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Optional

from . import metrics
from .artifacts import csv_text, read_marker
from .audio.season_voices import share_episode
from .config import ConfigError, resolve_config
from .corrections import last_undoable, load_corrections, undo_targets, undone_seqs
from .layout import RunLayout, crop_url, episode_prefixes, episodes_with_runs, facebank_chip_key, runs_prefix, source_video_keys, uploaded_video_key
from .ray_env import ensure_ray
from .registry import FACES, IDENTITIES, SPEECH_RTTM, VIDEO
from .review import assist, frames, view
from .review.edits import CorrectionBuilder, append_correction
from .review.errors import Conflict, NotFound, StaleClustering
from .review.faces import identity_faces
from .review.integrity import IntegrityReport, validate_run
from .review.live import live_screentime, per_second, view_screentime
from .review.view import RunView, assignments_summary, load_view
from .runner import DEFAULT_RUN_ID, run_pipeline, settle_running_markers
from .schemas import FaceRow, VideoMeta
from .screentime import csv_rows, effective_speech
from .shows import bank, facebank, roster
from .shows.confirmed import sync_run
from .shows.facebank import ENTRY_ID_PATTERN
from .shows.season import SEASON_COLUMNS, season_table
from .stages.base import Canceled
from .storage import Storage
from .video import VideoError, probe_video

__all__ = [
    # errors a route turns into a status
    "Canceled",
    "ConfigError",
    "Conflict",
    "NotFound",
    "StaleClustering",
    "VideoError",
    # configuration, layout and running
    "DEFAULT_RUN_ID",
    "ENTRY_ID_PATTERN",
    "RunLayout",
    "crop_url",
    "ensure_ray",
    "episode_prefixes",
    "episodes_with_runs",
    "facebank_chip_key",
    "metrics",
    "probe_video",
    "read_marker",
    "resolve_config",
    "run_pipeline",
    "runs_prefix",
    "settle_running_markers",
    "source_video_keys",
    "uploaded_video_key",
    "video_meta",
    # a run's review
    "CorrectionBuilder",
    "IntegrityReport",
    "assignments_summary",
    "corrections_list",
    "faces_of_track",
    "frames",
    "live_screentime",
    "load_view",
    "per_second",
    "record_correction",
    "review_bundle",
    "run_integrity",
    "speech_rttm",
    "track_integrity",
    "track_labels",
    "undo_entries",
    "view",
    "view_screentime",
    "voice_spans",
    "assist",
    # exports
    "SEASON_COLUMNS",
    "csv_rows",
    "csv_text",
    "season_table",
    # shows
    "bank",
    "facebank",
    "load_corrections",
    "roster",
]


def video_meta(storage: Storage, layout: RunLayout) -> Optional[VideoMeta]:
    """The video a run was made from, as detect_track probed it (None before it ran)."""
    return VIDEO.read_if_exists(storage, layout)


def speech_rttm(storage: Storage, layout: RunLayout) -> Optional[str]:
    """The run's speech turns as RTTM (None when the audio stage has not written them)."""
    return SPEECH_RTTM.read_text(storage, layout) if SPEECH_RTTM.exists(storage, layout) else None


def faces_of_track(storage: Storage, layout: RunLayout, track_id: int) -> list[FaceRow]:
    """The faces listed for a track; Conflict before faces_embed ran, NotFound for an unknown track."""
    if not FACES.exists(storage, layout):
        raise Conflict(f"no faces for {layout.ep_id}/{layout.run_id} yet: run the faces_embed stage")
    faces = [f for f in FACES.read(storage, layout) if f.track_id == track_id]
    if not faces:
        raise NotFound(f"Track {track_id} not found in {layout.ep_id}/{layout.run_id}")
    return faces


def run_integrity(storage: Storage, layout: RunLayout) -> IntegrityReport:
    """The validator's report, with the corrections the current artifacts no longer hold."""
    unattached = [u.seq for u in load_view(storage, layout).resolved.unattached] if IDENTITIES.exists(storage, layout) else []
    return validate_run(storage, layout, unattached)


def track_integrity(storage: Storage, layout: RunLayout, track_id: int) -> IntegrityReport:
    faces_of_track(storage, layout, track_id)
    return validate_run(storage, layout, track_id=track_id)


def track_labels(storage: Storage, layout: RunLayout, cast_names: dict[str, str]) -> dict[int, str]:
    """The name (or identity) each track is drawn with on frames and clips; none before clustering."""
    if not IDENTITIES.exists(storage, layout):
        return {}
    return view.track_labels(load_view(storage, layout), cast_names)


def review_bundle(storage: Storage, layout: RunLayout, cast_names: dict[str, str], faces: int) -> dict[str, Any]:
    """Everything the review page needs (see ``GET .../faces_review_bundle``): identities with their
    corrections, naming, likely suggestions and merge candidates; with ``faces``, up to that many crops each."""
    run_view = load_view(storage, layout)
    report = view_screentime(run_view, cast_names)
    bundle = view.faces_review_bundle(storage, run_view, {i.identity_id: i.visual_s for i in report.identities})
    floor = assist.suggestion_floor(run_view.resolved.auto_threshold, resolve_config(None, None).config.naming.suggestion_window)
    candidates = assist.merge_candidates(storage, run_view)
    bundle["suggestion_floor"] = floor
    for ident in bundle["identities"]:
        ident["merge_candidates"] = candidates.get(ident["identity_id"], [])
        for s in ident["suggestions"]:
            s["likely"] = floor is None or s["score"] >= floor
    if faces:
        per_identity = identity_faces(storage, run_view, faces)
        for ident in bundle["identities"]:
            ident["faces"] = per_identity.get(ident["identity_id"], [])
    return bundle


def record_correction(
    storage: Storage,
    layout: RunLayout,
    build: CorrectionBuilder,
    lock: Callable[[], AbstractContextManager],
    cluster_version: Optional[str] = None,
    group: Optional[str] = None,
) -> dict[str, Any]:
    """Append the corrections ``build`` makes (see :func:`~pipelines.review.edits.append_correction`;
    ``group`` marks them as one step), then bring the run's confirmed faces in the show's facebank and its
    voices in the season's evidence up to date. Returns the assignments with the facebank's changes."""
    ops: list[str] = []

    def grouped(identity, track):  # type: ignore[no-untyped-def]  # runs under the log's lock
        built = build(identity, track)
        entries = built if isinstance(built, list) else [built]
        ops.extend(e["op"] for e in entries)
        return [{**e, "group": group} for e in entries] if group else built

    run_view = append_correction(storage, layout, grouped, lock, cluster_version)
    for op in ops:
        metrics.correction_written(op)
    with lock():
        synced = sync_run(storage, run_view, resolve_config(None, None).config.naming.faces_per_identity)
        if run_view.inputs.speaker_model:  # an episode with voices: what they are evidence for may have changed
            share_episode(storage, view_screentime(run_view, {}), effective_speech(run_view.inputs)[1], run_view.inputs.speaker_model)
    return {**assignments_summary(storage, run_view), "facebank": synced}


def corrections_list(storage: Storage, layout: RunLayout) -> dict[str, Any]:
    """The run's corrections log, newest first, each with whether it is still in effect."""
    log = load_corrections(storage, layout)
    undone = undone_seqs(log)
    entries = [
        {
            "seq": c.seq,
            "op": c.op,
            "cast_id": getattr(c, "cast_id", None),
            "created_at": c.created_at,
            "undone": c.seq in undone,
            "target_seq": getattr(c, "target_seq", None),
            "group": c.group,
        }
        for c in log.corrections
    ]
    return {"ep_id": layout.ep_id, "run_id": layout.run_id, "corrections": entries[::-1], "next_undo": last_undoable(log)}


def undo_entries(storage: Storage, layout: RunLayout, seq: Optional[int]) -> list[dict[str, Any]]:
    """The undo entries that take back correction ``seq`` (default: the newest in effect) with the others
    of its step; Conflict when there is nothing to undo. Call under the log's lock."""
    log = load_corrections(storage, layout)
    where = f"{layout.ep_id}/{layout.run_id}"
    if seq is None and last_undoable(log) is None:
        raise Conflict(f"nothing to undo in {where}")
    targets = undo_targets(log, seq)
    if not targets:
        raise Conflict(f"correction {seq} is not in effect in {where}")
    return [{"op": "undo", "target_seq": target} for target in targets]


def voice_spans(run_view: RunView, voice_id: str) -> list[list[float]]:
    """When ``voice_id`` spoke, as screen time shows the voices (merged ones split by the season): the
    anchor of a voice assignment. NotFound for a voice the run does not have."""
    turns, _ = effective_speech(run_view.inputs)
    spans = [[t.start, t.end] for t in turns if t.voice_id == voice_id]
    if not spans:
        layout = run_view.layout
        raise NotFound(f"voice {voice_id} not found in {layout.ep_id}/{layout.run_id}: run the audio stage first")
    return spans
