"""Track every segment independently, then stitch across boundaries into episode-wide track ids."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .stitch import TrackEnd, UnionFind, has_cut_between, stitch_boundary
from .tracker import IouTracker, TrackerParams


@dataclass
class FrameDetections:
    frame_idx: int
    boxes: np.ndarray  # (n, 4)
    scores: np.ndarray  # (n,)
    appearance: np.ndarray | None = None  # (n, D) unit colour descriptors, for TrackerParams.appearance_min


@dataclass
class EpisodeTracks:
    ids: list[list[np.ndarray]]
    """Per segment, per frame: episode track id per detection (-1: untracked). Ids are 1..N by first appearance."""
    stitched_links: int


def _track_ends(frames: list[FrameDetections], ids: list[np.ndarray]) -> list[TrackEnd]:
    seen: dict[int, list[tuple[int, np.ndarray]]] = {}
    for fd, fids in zip(frames, ids):
        for box, tid in zip(fd.boxes, fids):
            if tid >= 0:
                seen.setdefault(int(tid), []).append((fd.frame_idx, np.asarray(box, np.float32)))
    ends = []
    for tid, obs in seen.items():
        velocity = np.zeros(4, np.float32)
        if len(obs) >= 2:
            (f0, b0), (f1, b1) = obs[-2], obs[-1]
            velocity = (b1 - b0) / max(1, f1 - f0)
        ends.append(TrackEnd(tid, obs[0][0], obs[-1][0], obs[0][1], obs[-1][1], velocity))
    return ends


def track_episode(segments: list[list[FrameDetections]], cuts: list[int], params: TrackerParams) -> EpisodeTracks:
    """``segments``: sampled frames of each segment in order. ``cuts``: sorted episode-wide cut frames."""
    next_id = 0
    local_ids: list[list[np.ndarray]] = []
    ends: list[list[TrackEnd]] = []
    for frames in segments:
        tracker = IouTracker(params, first_id=next_id)
        seg_ids = []
        prev_frame: int | None = None
        for fd in frames:
            cut = prev_frame is not None and has_cut_between(cuts, prev_frame, fd.frame_idx)
            seg_ids.append(tracker.step(fd.frame_idx, fd.boxes, fd.scores, cut_before=cut, appearance=fd.appearance))
            prev_frame = fd.frame_idx
        next_id = tracker.next_id
        seg_ids = [np.where(np.isin(ids, list(tracker.confirmed)), ids, -1) for ids in seg_ids]
        local_ids.append(seg_ids)
        ends.append(_track_ends(frames, seg_ids))

    joins = UnionFind()
    links = 0
    for k in range(1, len(segments)):
        if not segments[k]:
            continue
        boundary = segments[k][0].frame_idx
        for keep, other in stitch_boundary(ends[k - 1], ends[k], boundary, cuts, params):
            joins.union(keep, other)
            links += 1

    renumber: dict[int, int] = {}
    out: list[list[np.ndarray]] = []
    for seg_ids in local_ids:
        seg_out = []
        for fids in seg_ids:
            mapped = np.full(len(fids), -1, np.int64)
            for i, tid in enumerate(fids):
                if tid >= 0:
                    root = joins.find(int(tid))
                    mapped[i] = renumber.setdefault(root, len(renumber) + 1)
            seg_out.append(mapped)
        out.append(seg_out)
    return EpisodeTracks(ids=out, stitched_links=links)
