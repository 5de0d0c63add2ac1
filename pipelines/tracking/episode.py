"""Track every segment independently, then stitch across boundaries into episode-wide track ids."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from actors.detections import Detections

from .stitch import TrackEnd, UnionFind, has_cut_between, stitch_boundary
from .tracker import IouTracker, TrackerParams


@dataclass
class SegmentToTrack:
    """One segment's sampled frames (in order; a frame without faces still ages the tracks) and its
    detections (an ``appearance`` column, when present, feeds ``TrackerParams.appearance_min``)."""

    frames: list[int]
    faces: Detections


@dataclass
class EpisodeTracks:
    faces: list[Detections]
    """Each segment's detections with ``track_id`` set: episode ids 1..N by first appearance, -1 untracked."""
    stitched_links: int


def _track_segment(segment: SegmentToTrack, cuts: list[int], params: TrackerParams, first_id: int) -> tuple[np.ndarray, int]:
    """(a segment-local track id per detection, -1 for none; the next free id)."""
    tracker = IouTracker(params, first_id=first_id)
    faces = segment.faces
    appearance = faces.extra.get("appearance")
    ids = np.full(len(faces), -1, np.int64)
    prev_frame: int | None = None
    for frame, rows in faces.by_frame(segment.frames):
        cut = prev_frame is not None and has_cut_between(cuts, prev_frame, frame)
        ids[rows] = tracker.step(frame, faces.boxes[rows], faces.scores[rows], cut_before=cut, appearance=appearance[rows] if appearance is not None else None)
        prev_frame = frame
    return np.where(np.isin(ids, list(tracker.confirmed)), ids, -1), tracker.next_id


def _track_ends(faces: Detections, ids: np.ndarray) -> list[TrackEnd]:
    ends = []
    for tid in np.unique(ids[ids >= 0]):
        rows = np.nonzero(ids == tid)[0]
        rows = rows[np.argsort(faces.frame_idx[rows], kind="stable")]
        boxes, frames = faces.boxes[rows].astype(np.float32), faces.frame_idx[rows]
        velocity = (boxes[-1] - boxes[-2]) / max(1, int(frames[-1] - frames[-2])) if len(rows) >= 2 else np.zeros(4, np.float32)
        ends.append(TrackEnd(int(tid), int(frames[0]), int(frames[-1]), boxes[0], boxes[-1], velocity))
    return ends


def track_episode(segments: list[SegmentToTrack], cuts: list[int], params: TrackerParams) -> EpisodeTracks:
    """``segments`` in order; ``cuts``: sorted episode-wide cut frames."""
    next_id = 0
    local_ids: list[np.ndarray] = []
    for segment in segments:
        ids, next_id = _track_segment(segment, cuts, params, next_id)
        local_ids.append(ids)
    ends = [_track_ends(s.faces, ids) for s, ids in zip(segments, local_ids)]

    joins = UnionFind()
    links = 0
    for k in range(1, len(segments)):
        if not segments[k].frames:
            continue
        for keep, other in stitch_boundary(ends[k - 1], ends[k], segments[k].frames[0], cuts, params):
            joins.union(keep, other)
            links += 1

    renumber: dict[int, int] = {}
    out = []
    for segment, ids in zip(segments, local_ids):
        order = np.argsort(segment.faces.frame_idx, kind="stable")  # numbered by first appearance
        mapped = np.full(len(ids), -1, np.int64)
        for i in order:
            if ids[i] >= 0:
                mapped[i] = renumber.setdefault(joins.find(int(ids[i])), len(renumber) + 1)
        out.append(segment.faces.with_columns(track_id=mapped))
    return EpisodeTracks(faces=out, stitched_links=links)
