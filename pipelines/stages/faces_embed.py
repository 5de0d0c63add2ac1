"""Stage 2: choose faces per track, gate their quality, embed them on an actor pool, and build one
prototype per track.

Faces come from the aligned chips that detect_track stored, so the video is not decoded again. Per
track, up to ``max_faces_per_track`` faces are embedded: the best of each of that many stretches of it;
faces failing the gates stay in faces.jsonl with a skip reason. A track whose faces all fail still
gets its single best face embedded, so its screen time can be attributed; its low quality shows in
faces.jsonl.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Optional

import numpy as np
import ray

from actors.model_actors import start_embedder_pool
from actors.models.registry import embedder_identity

from ..ids import face_id
from ..layout import RunLayout
from ..registry import DETECTIONS, FACE_EMBEDDINGS, FACES, TRACK_METRICS, TRACK_PROTOTYPES, TRACK_REPS
from ..schemas import DetectionRow, FaceRow, StageName, TrackRep
from ..segment_store import read_chips, read_segment
from ..stage_settings import FacesEmbedConfig
from ..video import plan_sampling
from .base import RunContext, StageSpec, model_settings

STAGE = StageName.faces_embed
SHARPNESS_FULL = 100.0
"""Laplacian variance at which a chip counts as fully sharp in the quality score."""


def face_quality(d: DetectionRow, blur: float) -> float:
    """How good a face is to embed, 0-1: detector score x sharpness.

    Size and frontalness (where the nose sits between the eyes) were tried as further factors
    (2026-12-07): the accuracy, naming and review-effort benchmarks did not move, and on Megamind.avi,
    with every sample detected, the faces they chose made the two leads one identity; so they are not used."""
    return d.conf * min(1.0, blur / SHARPNESS_FULL)


def _spread_pick(n: int, k: int) -> list[int]:
    """k indices spread evenly over range(n), always including the last."""
    if n <= k:
        return list(range(n))
    return sorted(set(np.linspace(0, n - 1, k).round().astype(int).tolist()) | {n - 1})


def _best_per_run(scores: list[float], k: int) -> list[int]:
    """k indices: ``range(len(scores))`` cut into k runs of (nearly) equal length, the best-scoring
    index of each run. The faces stay spread over the track (different poses and moments) while each
    is the sharpest, most confident one of its stretch."""
    n = len(scores)
    if n <= k:
        return list(range(n))
    edges = np.linspace(0, n, k + 1).round().astype(int)
    return [int(a + np.argmax(scores[a:b])) for a, b in zip(edges[:-1], edges[1:])]


def _segment_frames(ctx: RunContext) -> int:
    """Frames per detection segment, as detect_track recorded it (re-planned for runs that predate that)."""
    metrics = TRACK_METRICS.read(ctx.storage, ctx.layout)
    if metrics.segment_frames:
        return metrics.segment_frames
    cfg = ctx.config.detect_track
    _, segments = plan_sampling(ctx.require_video(), cfg.detect_fps, cfg.stride, cfg.segment_s)
    return segments[0].end_frame - segments[0].start_frame


def fingerprint_inputs(ctx: RunContext) -> list:
    return [embedder_identity(ctx.config.models)[0], model_settings(ctx.config)]


def _chip_quality(ctx: RunContext, detections: list[DetectionRow], seg_len: int) -> dict[tuple[int, int], tuple[float, float]]:
    """(blur, contrast) per (frame, detection), as detect_track measured them on the chips."""
    quality: dict[tuple[int, int], tuple[float, float]] = {}
    for seg in {d.frame_idx // seg_len for d in detections}:
        faces = read_segment(ctx.storage, ctx.layout.segment(seg)).faces
        for f, k, b, c in zip(faces.frame_idx, faces.det_idx, faces.extra["blur"], faces.extra["contrast"]):
            quality[(int(f), int(k))] = (float(b), float(c))
    return quality


def _gate(d: DetectionRow, blur: float, contrast: float, cfg: FacesEmbedConfig) -> Optional[str]:
    """Why a face is not embedded (None: it passes every gate)."""
    if d.conf < cfg.min_conf:
        return "low_conf"
    if contrast < cfg.min_contrast:
        return "low_contrast"
    if blur < cfg.min_blur:
        return "blurry"
    return None


def choose_faces(
    by_track: dict[int, list[DetectionRow]],
    quality: dict[tuple[int, int], tuple[float, float]],
    cfg: FacesEmbedConfig,
    model_name: str,
    layout: RunLayout,
) -> tuple[list[FaceRow], list[int]]:
    """(faces listed, indices of those to embed): per track, the faces spread over it (shown), and the
    best passing face of each of ``max_faces_per_track`` stretches (embedded); its single best face when
    none passes."""
    faces: list[FaceRow] = []
    to_embed: list[int] = []
    for track_id in sorted(by_track):
        rows = []
        for d in sorted(by_track[track_id], key=lambda d: d.frame_idx):
            blur, contrast = quality[(d.frame_idx, d.det_idx)]
            rows.append((d, blur, contrast, face_quality(d, blur), _gate(d, blur, contrast, cfg)))
        shown = set(_spread_pick(len(rows), cfg.max_faces_per_track))
        passing = [i for i, r in enumerate(rows) if r[4] is None]
        chosen = [passing[i] for i in _best_per_run([rows[p][3] for p in passing], cfg.max_faces_per_track)] if passing else []
        chosen = chosen or [max(range(len(rows)), key=lambda i: rows[i][3])]
        for i in sorted(shown | set(chosen)):
            d, blur, contrast, score, skip = rows[i]
            embed = i in chosen
            faces.append(
                FaceRow(
                    face_id=face_id(track_id, d.frame_idx),
                    track_id=track_id,
                    frame_idx=d.frame_idx,
                    ts=d.ts,
                    bbox_xyxy=d.bbox_xyxy,
                    conf=d.conf,
                    quality=round(score, 4),
                    blur=round(blur, 2),
                    contrast=round(contrast, 2),
                    embedding_model=model_name if embed else None,
                    embedding_row=None,
                    crop_path=layout.crop(track_id, d.frame_idx) if (embed and cfg.write_crops) else None,
                    skip=None if embed else skip,
                )
            )
            if embed:
                to_embed.append(len(faces) - 1)
    return faces, to_embed


def _chips(ctx: RunContext, faces: list[FaceRow], to_embed: list[int], detections: list[DetectionRow], seg_len: int) -> list[bytes]:
    """The stored aligned chip (JPEG) of each face to embed, read segment by segment."""
    det_of_face = {(d.track_id, d.frame_idx): d.det_idx for d in detections}
    keys = [(faces[fi].frame_idx, det_of_face[(faces[fi].track_id, faces[fi].frame_idx)]) for fi in to_embed]
    wanted: dict[int, set[tuple[int, int]]] = defaultdict(set)
    for key in keys:
        wanted[key[0] // seg_len].add(key)
    chips: dict[tuple[int, int], bytes] = {}
    for seg, seg_keys in wanted.items():
        chips.update(read_chips(ctx.storage, ctx.layout.segment(seg), seg_keys))
    return [chips[key] for key in keys]


def track_prototypes(
    by_track: dict[int, list[DetectionRow]], faces: list[FaceRow], embeddings: np.ndarray, mixed_spread: float
) -> tuple[list[TrackRep], list[np.ndarray]]:
    """Per track, the quality-weighted mean of its embedded faces (unit length), its representative face
    and how spread its faces are (``mixed`` above ``mixed_spread``: maybe two people)."""
    reps: list[TrackRep] = []
    prototypes: list[np.ndarray] = []
    faces_by_track: dict[int, list[FaceRow]] = defaultdict(list)
    for f in faces:
        if f.embedding_row is not None:
            faces_by_track[f.track_id].append(f)
    for track_id in sorted(by_track):
        tf = faces_by_track[track_id]
        vecs = embeddings[[int(f.embedding_row) for f in tf if f.embedding_row is not None]]
        weights = np.array([max(f.quality, 1e-3) for f in tf], np.float32)
        proto = (vecs * weights[:, None]).sum(axis=0)
        proto /= max(float(np.linalg.norm(proto)), 1e-12)
        spread = float(np.mean(1.0 - vecs @ proto))
        reps.append(
            TrackRep(
                track_id=track_id,
                faces_count=len(by_track[track_id]),
                embedded_count=len(tf),
                rep_face_id=max(tf, key=lambda f: f.quality).face_id,
                prototype_row=len(prototypes),
                spread=round(spread, 4),
                mixed=spread > mixed_spread,
            )
        )
        prototypes.append(proto)
    return reps, prototypes


def run(ctx: RunContext) -> dict[str, float]:
    cfg = ctx.config.faces_embed
    layout = ctx.layout
    seg_len = _segment_frames(ctx)
    detections = [d for d in DETECTIONS.read(ctx.storage, layout) if d.track_id is not None and not d.interpolated]  # interpolated faces have no chip
    by_track: dict[int, list[DetectionRow]] = defaultdict(list)
    for d in detections:
        by_track[d.track_id].append(d)  # type: ignore[index]
    faces, to_embed = choose_faces(by_track, _chip_quality(ctx, detections, seg_len), cfg, embedder_identity(ctx.config.models)[0], layout)
    ctx.progress(STAGE, 0, len(to_embed), step="embed")
    chips = _chips(ctx, faces, to_embed, detections, seg_len)
    embeddings = _embed(ctx, [{"face_row": fi, "chip_jpeg": chip} for fi, chip in zip(to_embed, chips)], len(to_embed))
    ctx.check_canceled()
    for row, fi in enumerate(to_embed):
        faces[fi].embedding_row = row
        if cfg.write_crops:
            ctx.storage.write_bytes(faces[fi].crop_path, chips[row])  # type: ignore[arg-type]
    reps, prototypes = track_prototypes(by_track, faces, embeddings, cfg.mixed_spread)
    dim = embeddings.shape[1] if len(embeddings) else 0
    FACE_EMBEDDINGS.write(ctx.storage, layout, embeddings.astype(np.float32))
    TRACK_PROTOTYPES.write(ctx.storage, layout, np.stack(prototypes).astype(np.float32) if prototypes else np.zeros((0, dim), np.float32))
    FACES.write(ctx.storage, layout, faces)
    TRACK_REPS.write(ctx.storage, layout, reps)
    ctx.progress(STAGE, len(to_embed), len(to_embed), step="embed")
    return {
        "faces": len(faces),
        "embedded": len(to_embed),
        "skipped": sum(1 for f in faces if f.skip),
        "tracks": len(reps),
        "mixed_tracks": sum(1 for r in reps if r.mixed),
    }


def _embed(ctx: RunContext, items: list[dict], total: int, max_chunk: int = 32) -> np.ndarray:
    """Embed on the long-running embedder actors: chips split into even chunks (two per actor at
    least, for balance), each handed to whichever actor is free."""
    if not items:
        return np.zeros((0, 0), np.float32)
    actors = start_embedder_pool(ctx.config.models.model_dump())
    chunk = max(1, min(max_chunk, -(-len(items) // (2 * len(actors)))))
    chunks = [items[i : i + chunk] for i in range(0, len(items), chunk)]
    results: dict[int, np.ndarray] = {}
    in_flight: dict[Any, tuple[int, int]] = {}  # ref -> (chunk, actor)
    idle = list(range(len(actors)))
    next_chunk = done = 0
    while next_chunk < len(chunks) or in_flight:
        while next_chunk < len(chunks) and idle:
            a = idle.pop()
            ref: Any = actors[a].embed_jpegs.remote([it["chip_jpeg"] for it in chunks[next_chunk]])
            in_flight[ref] = (next_chunk, a)
            next_chunk += 1
        ready, _ = ray.wait(list(in_flight), num_returns=1)
        k, a = in_flight.pop(ready[0])
        idle.append(a)
        results[k] = ray.get(ready[0])
        done += len(chunks[k])
        ctx.check_canceled()
        ctx.progress(STAGE, done, total, step="embed")
    return np.concatenate([results[k] for k in range(len(chunks))]).astype(np.float32)


SPEC = StageSpec(name=STAGE, version=3, outputs=(FACES, TRACK_REPS), run=run, fingerprint_inputs=fingerprint_inputs)
