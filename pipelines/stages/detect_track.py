"""Stage 1: decode, detect, track.

Ray Data shards the episode into time segments decoded in parallel; detection runs as
``map_batches`` over a detector actor pool; the driver writes each finished segment's detections
atomically (a rerun skips finished segments), then tracks each segment and stitches tracks across
segment boundaries.
"""

from __future__ import annotations

import dataclasses
import os
import time
import warnings
from collections import Counter
from functools import partial
from typing import Any

import numpy as np
import ray

from actors.appearance import DIM, chip_descriptor
from actors.detections import Detections
from actors.detector_actor import CRASH_ONCE_ENV, RESIZE_FILTER, DetectorSettings, FaceDetectorWorker
from actors.faces import FrameFaces
from actors.keyframes import KeyframeSettings
from actors.models.config import effective_runtime
from actors.pools import actor_pool, wants_gpu

from ..frame_source import decode_segments
from ..layout import RunLayout
from ..registry import DETECTIONS, SHOTS, TRACK_METRICS, TRACKS, VIDEO
from ..schemas import (
    DetectionRow,
    Segment,
    SegmentSummary,
    Shot,
    ShotsFile,
    StageName,
    TrackMetrics,
    TrackRow,
    VideoMeta,
)
from ..segment_store import SegmentFile, read_segment, segment_fingerprint, write_segment
from ..storage import Storage
from ..tracking.episode import SegmentToTrack, track_episode
from ..tracking.spans import build_shots, detection_span, shot_index
from ..tracking.tracker import TrackerParams
from ..video import DecodeOptions, plan_sampling, summarize_cuts
from .base import RunContext, StageSpec, exception_chain, fingerprint, model_settings

STAGE = StageName.detect_track
MAX_BBOXES_SAMPLED = 8
DETECT_ATTEMPTS = 3
"""Detector actors are not restarted by Ray (``max_restarts=0``): Ray Data keeps the pool's constructor
arguments in the object store, and a restartable actor with such arguments makes every run print a
core_worker ERROR line. When one dies (killed, out of memory, a lost node), the stage instead runs
again over the segments not yet written, up to this many times in all; finished segments are kept."""


def _actor_died(exc: BaseException) -> bool:
    """Whether ``exc`` (or anything it was raised from) is a Ray actor's death."""
    return any(isinstance(e, ray.exceptions.RayActorError) for e in exception_chain(exc))


def detector_name(ctx: RunContext) -> str:
    models = ctx.config.models
    return f"yunet:{effective_runtime(models)}" if models.backend == "yunet_sface" else f"insightface:{models.insightface_dir}"


def detection_fingerprint(ctx: RunContext, meta: VideoMeta, stride: int, segments: list[Segment]) -> str:
    """What a segment's detections depend on (not tracker settings: those only re-run tracking; not the
    decoder either: H.264/HEVC decoding is exact by the standards, so NVDEC and the CPU give the same
    picture, which ``bench.gpu_check`` verifies after colour conversion)."""
    cfg = ctx.config.detect_track
    return fingerprint(
        "segment-detections",
        meta.content_id,
        detector_name(ctx),
        RESIZE_FILTER,
        stride,
        len(segments),
        segments[0].end_frame,
        cfg.det_long_side,
        cfg.det_thresh,
        cfg.min_face_px,
        cfg.cut_threshold,
        cfg.min_shot_frames,
        cfg.decode_all_frames,
        cfg.keyframe_max_gap,
        cfg.keyframe_match_iou,
        cfg.keyframe_max_change,
        (cfg.track_appearance_min, cfg.track_high_thresh) if cfg.keyframe_max_gap > 1 else None,
    )


def _sampled(segment: Segment, stride: int) -> int:
    return len(range(segment.start_frame, segment.end_frame, stride))


def fingerprint_inputs(ctx: RunContext) -> list[Any]:
    return [ctx.require_video().content_id, model_settings(ctx.config)]


def run(ctx: RunContext) -> dict[str, float]:
    started = time.time()
    meta = ctx.require_video()
    cfg = ctx.config.detect_track
    stride, segments = plan_sampling(meta, cfg.detect_fps, cfg.stride, cfg.segment_s)
    seg_fp = detection_fingerprint(ctx, meta, stride, segments)
    total = sum(_sampled(s, stride) for s in segments)
    driver: dict[str, float] = {}
    for attempt in range(1, DETECT_ATTEMPTS + 1):
        todo = [s for s in segments if segment_fingerprint(ctx.storage, ctx.layout.segment(s.index)) != seg_fp]
        done = total - sum(_sampled(s, stride) for s in todo)
        ctx.progress(STAGE, done, total, step="detect", segments_reused=len(segments) - len(todo), attempt=attempt)
        if not todo:
            break
        try:
            _detect_segments(ctx, meta, stride, segments, todo, seg_fp, done, total, driver)
            break
        except Exception as exc:  # noqa: BLE001 - only a detector actor's death is retried
            if attempt == DETECT_ATTEMPTS or not _actor_died(exc):
                raise
            driver["retries"] = driver.get("retries", 0) + 1
    ctx.check_canceled()
    ctx.progress(STAGE, total, total, step="track")
    return _assemble(ctx, meta, stride, segments, started, driver)


def _detect_segments(
    ctx: RunContext, meta: VideoMeta, stride: int, segments: list[Segment], todo: list[Segment], seg_fp: str, done: int, total: int, driver: dict[str, float]
) -> None:
    """Detect ``todo`` on the actor pool, writing each segment as soon as all its frames are back.
    ``driver`` receives the wall seconds until the first frame came back (actor start-up and the first
    batch) and until the last (``first_frame_wall``, ``detect_wall``)."""
    cfg = ctx.config.detect_track
    pool = actor_pool(cfg.num_detectors, use_gpu=wants_gpu(ctx.config.models.model_dump()))
    pool = dataclasses.replace(pool, size=min(pool.size, len(todo)))
    options = DecodeOptions(
        stride=stride,
        cut_threshold=cfg.cut_threshold,
        min_shot_frames=cfg.min_shot_frames,
        all_frames=cfg.decode_all_frames,
        hw_decode=cfg.decode_device == "cuda" or (cfg.decode_device == "auto" and pool.num_gpus > 0),
        nvdec_share=1.0 if cfg.decode_device == "cuda" else cfg.nvdec_share,
    )
    frame_source = partial(
        decode_segments,
        path=ctx.video_source if ctx.video_source and ctx.video_source.startswith("s3://") else meta.path,
        fps=meta.fps,
        options=options,
        last_segment=segments[-1].index,
        frames_per_batch=cfg.batch_size,
    )
    settings = DetectorSettings(
        det_long_side=cfg.det_long_side,
        det_thresh=cfg.det_thresh,
        min_face_px=cfg.min_face_px,
        keyframes=KeyframeSettings(
            max_gap=cfg.keyframe_max_gap,
            match_iou=cfg.keyframe_match_iou,
            appearance_min=cfg.track_appearance_min,
            max_picture_change=cfg.keyframe_max_change,
            confident=cfg.track_high_thresh,
        ),
    )
    items = ray.data.from_items([s.model_dump() for s in todo], override_num_blocks=len(todo))
    crash_once = os.environ.get(CRASH_ONCE_ENV)  # the tests' fault injection reaches the actors through their environment
    runtime_env: dict[str, Any] | None = {"env_vars": {CRASH_ONCE_ENV: crash_once}} if crash_once else None
    with warnings.catch_warnings():
        # max_restarts has no named parameter in map_batches: Ray 2.60 warns that the remote-args route
        # is deprecated (it goes in Ray 2.64, so pyproject keeps ray below that).
        warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated")
        ds = items.map_batches(
            FaceDetectorWorker,
            fn_constructor_kwargs=dict(
                model_config=ctx.config.models.model_dump(), settings=settings, frames_per_batch=cfg.batch_size, frame_source=frame_source
            ),
            batch_size=1,
            runtime_env=runtime_env,
            max_restarts=0,  # see DETECT_ATTEMPTS
            **pool.map_batches_kwargs(),
        )
    by_index = {s.index: s for s in todo}
    buffers: dict[int, list[FrameFaces]] = {}
    expected: dict[int, int] = {}
    t0 = time.time()
    processed = 0
    for batch in ds.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=1):
        driver.setdefault("first_frame_wall", round(time.time() - t0, 3))
        ctx.check_canceled()
        for blob in batch["frame"]:
            frame = FrameFaces.from_bytes(blob)
            buffers.setdefault(frame.segment, []).append(frame)
            if frame.segment_sampled_total >= 0:
                expected[frame.segment] = frame.segment_sampled_total
            processed += 1
        for seg in [s for s in buffers if s in expected and len(buffers[s]) >= expected[s]]:
            _flush_segment(ctx, by_index[seg], buffers.pop(seg), seg_fp)
        elapsed = max(1e-6, time.time() - t0)
        ctx.progress(STAGE, done + processed, total, step="detect", fps_infer=processed / elapsed)
    driver["detect_wall"] = round(time.time() - t0, 3)
    if buffers:
        raise RuntimeError(f"segments {sorted(buffers)} ended without all their frames; nothing was written for them")


def _sum_work(parts: list[dict[str, float]]) -> dict[str, float]:
    """Seconds by kind of work, summed over ``parts`` (frames of a segment, segments of a run)."""
    total: dict[str, float] = {}
    for part in parts:
        for kind, seconds in part.items():
            total[kind] = total.get(kind, 0.0) + seconds
    return {kind: round(seconds, 3) for kind, seconds in total.items()}


def _flush_segment(ctx: RunContext, segment: Segment, frames: list[FrameFaces], seg_fp: str) -> None:
    frames.sort(key=lambda f: f.frame_idx)
    work = _sum_work([f.work_s for f in frames])
    decoder = "nvdec" if work.get("decode_nvdec", 0.0) > 0 else "cpu"
    if decoder == "cpu":
        work.pop("decode_nvdec", None)
        if ctx.config.detect_track.decode_device == "cuda":
            raise RuntimeError(
                f"detect_track.decode_device is cuda, but segment {segment.index} was decoded on the CPU: NVDEC is not available "
                "to the detector actors (no GPU assigned, a driver without libnvcuvid, or a codec/profile NVDEC lacks); "
                "use auto to fall back to the CPU"
            )
    summary = SegmentSummary(
        segment=segment,
        frames_decoded=segment.end_frame - segment.start_frame,
        sampled_frames=[f.frame_idx for f in frames],
        cut_frames=sorted({c for f in frames for c in f.cuts}),
        detections=sum(len(f) for f in frames),
        frames_detected=sum(1 for f in frames if "detect" in f.work_s),
        work_s=work,
        decoder=decoder,
    )
    write_segment(ctx.storage, ctx.layout.segment(segment.index), summary, seg_fp, Detections.concat([f.faces for f in frames]))


def segment_appearance(storage: Storage, key: str, segment: SegmentFile) -> np.ndarray:
    """The colour descriptors of a segment's detections for the tracker's gate: stored by the detector
    actors, or (a segment written before they were) computed here from its chips, to the same values."""
    if "appearance" in segment.faces.extra:
        return segment.faces.extra["appearance"].astype(np.float32)
    chips = read_segment(storage, key, with_chips=True).faces.extra["chip_jpeg"]
    return np.asarray([chip_descriptor(c) for c in chips], np.float32).reshape(-1, DIM)


def detection_rows(ep_id: str, fps: float, faces: Detections) -> list[DetectionRow]:
    """Every detection as detections.jsonl holds it, with its track (rounded: boxes to 0.1 px)."""
    return [
        DetectionRow(
            ep_id=ep_id,
            ts=round(int(f) / fps, 4),
            frame_idx=int(f),
            det_idx=int(k),
            conf=round(float(c), 4),
            bbox_xyxy=[round(float(v), 1) for v in box],
            landmarks=[[round(float(x), 1), round(float(y), 1)] for x, y in marks.reshape(5, 2)],
            track_id=int(t) if t >= 0 else None,
            interpolated=not seen,
        )
        for f, k, c, box, marks, t, seen in zip(faces.frame_idx, faces.det_idx, faces.scores, faces.boxes, faces.landmarks, faces.track_id, faces.detected)
    ]


def untrack_undetected(faces: Detections) -> Detections:
    """``faces`` with tracks that no detected row supports (only interpolated ones, which the tracker can
    leave over when it splits a carried face from its keyframes) untracked: every track has at least one
    detected face, so a chip to embed."""
    detected = faces.detected
    supported = np.unique(faces.track_id[detected & (faces.track_id >= 0)])
    orphan = (faces.track_id >= 0) & ~np.isin(faces.track_id, supported)
    return faces.with_columns(track_id=np.where(orphan, -1, faces.track_id)) if orphan.any() else faces


def track_rows(faces: Detections, shots: list[Shot], stride: int, fps: float) -> list[TrackRow]:
    """One row per track of ``faces``: its shot, span (see :func:`~pipelines.tracking.spans.detection_span`),
    score and up to ``MAX_BBOXES_SAMPLED`` boxes spread over it (first and last included)."""
    shot_starts = [s.start_frame for s in shots]
    tracked = faces[faces.track_id >= 0]
    tracked = tracked[np.lexsort((tracked.frame_idx, tracked.track_id))]
    tracks: list[TrackRow] = []
    for rows in np.split(np.arange(len(tracked)), np.nonzero(np.diff(tracked.track_id))[0] + 1) if len(tracked) else []:
        track = tracked[rows]
        first, last = int(track.frame_idx[0]), int(track.frame_idx[-1])
        shot = shots[shot_index(shots, first, shot_starts)]
        start_s, end_s = detection_span(first, last, shot, stride, fps)
        pick = np.linspace(0, len(track) - 1, min(MAX_BBOXES_SAMPLED, len(track))).round().astype(int)
        tracks.append(
            TrackRow(
                track_id=int(track.track_id[0]),
                shot_idx=shot.index,
                first_ts=round(first / fps, 4),
                last_ts=round(last / fps, 4),
                first_frame_idx=first,
                last_frame_idx=last,
                frame_count=len(track),
                start_s=round(start_s, 4),
                end_s=round(end_s, 4),
                mean_conf=round(float(np.mean(track.scores.astype(np.float64))), 4),
                max_face_px=round(float(np.max(track.boxes[:, 3] - track.boxes[:, 1])), 1),
                bboxes_sampled=[[round(float(v), 1) for v in track.boxes[i]] + [int(track.frame_idx[i])] for i in pick],
            )
        )
    return tracks


def _assemble(ctx: RunContext, meta: VideoMeta, stride: int, segments: list[Segment], started: float, driver: dict[str, float]) -> dict[str, float]:
    """Read the segments' detections, track them over the episode, write detections, tracks and shots."""
    assemble_started = time.time()
    cfg = ctx.config.detect_track
    layout: RunLayout = ctx.layout
    segs = [read_segment(ctx.storage, layout.segment(s.index)) for s in segments]
    to_track = []
    for s, seg in zip(segments, segs):
        faces = seg.faces.with_columns(appearance=segment_appearance(ctx.storage, layout.segment(s.index), seg)) if cfg.track_appearance_min > 0 else seg.faces
        to_track.append(SegmentToTrack(seg.summary.sampled_frames, faces))
    cuts = summarize_cuts([c for s in segs for c in s.summary.cut_frames], cfg.min_shot_frames)
    shots = build_shots(cuts, meta.frame_count, meta.fps)
    tracked = track_episode(to_track, cuts, TrackerParams.from_config(cfg, meta.fps))
    faces = untrack_undetected(Detections.concat(tracked.faces))
    detections = detection_rows(layout.ep_id, meta.fps, faces)
    tracks = track_rows(faces, shots, stride, meta.fps)
    driver["track_wall"] = round(time.time() - assemble_started, 3)
    write_started = time.time()
    DETECTIONS.write(ctx.storage, layout, detections)
    TRACKS.write(ctx.storage, layout, tracks)
    SHOTS.write(ctx.storage, layout, ShotsFile(ep_id=layout.ep_id, fps=meta.fps, shots=shots))
    VIDEO.write(ctx.storage, layout, meta)
    driver["write_wall"] = round(time.time() - write_started, 3)
    metrics = TrackMetrics(
        ep_id=layout.ep_id,
        run_id=layout.run_id,
        frames_total=meta.frame_count,
        frames_sampled=sum(len(s.summary.sampled_frames) for s in segs),
        stride=stride,
        detections=len(detections),
        tracks=len(tracks),
        shots=len(shots),
        segments=len(segments),
        stitched_links=tracked.stitched_links,
        segment_frames=segments[0].end_frame - segments[0].start_frame,
        frames_detected=sum(len(s.summary.sampled_frames) if s.summary.frames_detected is None else s.summary.frames_detected for s in segs),
        interpolated=int((~faces.detected).sum()),
        wall_s=round(time.time() - started, 3),
        work_s={**_sum_work([seg.summary.work_s for seg in segs]), **driver},
        decoders=dict(Counter(seg.summary.decoder for seg in segs)),
    )
    TRACK_METRICS.write(ctx.storage, layout, metrics)
    return {"detections": len(detections), "tracks": len(tracks), "shots": len(shots), "segments": len(segments), "frames_sampled": metrics.frames_sampled}


SPEC = StageSpec(
    name=STAGE,
    version=4,
    outputs=(DETECTIONS, TRACKS, SHOTS, VIDEO, TRACK_METRICS),
    run=run,
    fingerprint_inputs=fingerprint_inputs,
    execution_only=frozenset({"batch_size", "num_detectors", "decode_device", "nvdec_share"}),
)
