"""Join tracks that cross a segment boundary.

Segments are tracked independently (in parallel, and resumable one by one). At each boundary with no
shot cut, a track that was alive at the end of the earlier segment is linked to a track that starts
at the beginning of the later one when the earlier track's predicted box overlaps the later track's
first box, exactly the test the tracker itself would have applied had the video been one segment.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass

import numpy as np

from .tracker import TrackerParams, association_scores, greedy_match


@dataclass(frozen=True)
class TrackEnd:
    """What the stitcher needs of a segment-local track."""

    track_id: int
    first_frame: int
    last_frame: int
    first_box: np.ndarray
    last_box: np.ndarray
    last_velocity: np.ndarray


class UnionFind:
    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, keep: int, other: int) -> None:
        a, b = self.find(keep), self.find(other)
        if a != b:
            self.parent[b] = a


def has_cut_between(cuts: list[int], after_frame: int, upto_frame: int) -> bool:
    """A cut at frame c separates frames a and b (a < b) iff a < c <= b."""
    return bisect_right(cuts, upto_frame) > bisect_left(cuts, after_frame + 1)


def stitch_boundary(earlier: list[TrackEnd], later: list[TrackEnd], boundary_frame: int, cuts: list[int], params: TrackerParams) -> list[tuple[int, int]]:
    """(earlier_id, later_id) pairs to join across the boundary at ``boundary_frame``."""
    iou = np.zeros((len(earlier), len(later)), np.float32)
    for i, e in enumerate(earlier):
        if boundary_frame - e.last_frame > params.max_gap_frames + 1:
            continue
        for j, s in enumerate(later):
            gap = s.first_frame - e.last_frame
            if gap <= 0 or gap > params.max_gap_frames or has_cut_between(cuts, e.last_frame, s.first_frame):
                continue
            predicted = e.last_box + e.last_velocity * float(gap)
            iou[i, j] = association_scores(predicted[None, :], s.first_box[None, :], params.match_iou, params.center_gate)[0, 0]
    return [(earlier[r].track_id, later[c].track_id) for r, c in greedy_match(iou, params.match_iou)]
