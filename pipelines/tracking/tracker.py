"""A ByteTrack-style IoU tracker for faces on sampled frames.

Two association passes per frame: confident detections first, then the remaining (weaker) ones
against tracks still unmatched. Confident detections start tracks; with ``min_hits`` weak ones start
tentative tracks that count only once confirmed (see :class:`TrackerParams`). Boxes are predicted with the
track's recent velocity, so faces that move between samples still overlap their prediction. A shot cut
closes every open track.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from actors.detections import iou_matrix

if TYPE_CHECKING:
    from ..stage_settings import DetectTrackConfig


@dataclass(frozen=True)
class TrackerParams:
    """The tracker's settings. Built from the ``detect_track`` config section (:meth:`from_config`),
    which holds every default and its trade-off; only ``center_gate``, which no config exposes, has one here."""

    high_thresh: float
    """Detections at or above this score start tracks; weaker ones may only continue them."""
    match_iou: float
    """Minimum IoU between a predicted track box and a detection to associate them."""
    max_gap_frames: int
    """Frames a track may go undetected before it is closed."""
    appearance_min: float
    """A detection whose colour descriptor (:mod:`actors.appearance`) is less similar than
    this to the track's never continues it, however well the boxes overlap: a face passing in front of
    another does not take over its track. 0: off. Measured on the accuracy benchmark: consecutive
    detections of one track score >= 0.89 (0.1th percentile), two people in one frame 0.78 median."""
    min_hits: int
    """0: weak detections never start tracks (ByteTrack). N > 0: a weak detection starts a tentative
    track, confirmed once N detections matched it (or one confident detection); unconfirmed tracks are
    dropped. Keeps persistently weak faces (blur, dark) at the cost of more candidate tracks."""
    center_gate: float = 0.0
    """When no box overlaps enough, a detection whose centre lies within this many face sizes of the
    prediction (and of similar scale) still continues the track, so fast movers sampled a few times a
    second stay one track. Off (0) by default: at 1.0 it swapped two people passing each other on the
    accuracy benchmark (purity 1.000 -> 0.980); fragments of one person are merged by clustering anyway."""

    @classmethod
    def from_config(cls, cfg: DetectTrackConfig, fps: float, **changes: float) -> TrackerParams:
        """The settings a run with ``cfg`` tracks with, at ``fps`` (the gap is configured in seconds);
        ``changes`` override fields by name (experiments and tests)."""
        values = {
            "high_thresh": cfg.track_high_thresh,
            "match_iou": cfg.track_match_iou,
            "max_gap_frames": int(round(cfg.track_max_gap_s * fps)),
            "appearance_min": cfg.track_appearance_min,
            "min_hits": cfg.track_min_hits,
        }
        return cls(**{**values, **changes})  # type: ignore[arg-type]

    def __post_init__(self) -> None:
        if not 0 <= self.match_iou <= 1:
            raise ValueError(f"match_iou must be in [0, 1], got {self.match_iou}")
        if self.max_gap_frames < 0:
            raise ValueError(f"max_gap_frames must be >= 0, got {self.max_gap_frames}")
        if self.min_hits < 0:
            raise ValueError(f"min_hits must be >= 0, got {self.min_hits}")


@dataclass
class _Track:
    track_id: int
    last_frame: int
    last_box: np.ndarray
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4, np.float32))
    hits: int = 1
    appearance: np.ndarray | None = None

    def predict(self, frame_idx: int) -> np.ndarray:
        return self.last_box + self.velocity * float(frame_idx - self.last_frame)

    def update(self, frame_idx: int, box: np.ndarray, appearance: np.ndarray | None = None) -> None:
        if appearance is not None:
            mixed = appearance if self.appearance is None else 0.7 * self.appearance + 0.3 * appearance
            self.appearance = mixed / max(float(np.linalg.norm(mixed)), 1e-9)
        dt = frame_idx - self.last_frame
        if dt > 0:
            observed = (box - self.last_box) / dt
            self.velocity = 0.5 * self.velocity + 0.5 * observed
        self.last_box = box.astype(np.float32)
        self.last_frame = frame_idx


def association_scores(predicted: np.ndarray, boxes: np.ndarray, min_iou: float, center_gate: float) -> np.ndarray:
    """IoU, except that pairs below ``min_iou`` whose centres are within ``center_gate`` face sizes and
    whose sizes differ by less than 1.5x score just ``min_iou`` (so true overlaps still win)."""
    iou = iou_matrix(predicted, boxes)
    if center_gate <= 0 or iou.size == 0:
        return iou
    pc = (predicted[:, None, :2] + predicted[:, None, 2:]) / 2
    bc = (boxes[None, :, :2] + boxes[None, :, 2:]) / 2
    ps = np.maximum(predicted[:, 2] - predicted[:, 0], predicted[:, 3] - predicted[:, 1])[:, None]
    bs = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])[None, :]
    close = np.linalg.norm(pc - bc, axis=2) <= center_gate * np.maximum(ps, bs)
    similar = np.maximum(ps, bs) <= 1.5 * np.minimum(ps, bs)
    return np.where((iou < min_iou) & close & similar, min_iou, iou)


def greedy_match(iou: np.ndarray, min_iou: float) -> list[tuple[int, int]]:
    """Pairs (row, col) by descending IoU, each row and column used once, IoU >= ``min_iou``."""
    if iou.size == 0:
        return []
    rows, cols = np.nonzero(iou >= max(min_iou, 1e-9))
    order = np.argsort(-iou[rows, cols], kind="stable")
    used_r: set[int] = set()
    used_c: set[int] = set()
    pairs = []
    for k in order:
        r, c = int(rows[k]), int(cols[k])
        if r in used_r or c in used_c:
            continue
        used_r.add(r)
        used_c.add(c)
        pairs.append((r, c))
    return pairs


class IouTracker:
    """Feed sampled frames in order with :meth:`step`; read ids per detection."""

    def __init__(self, params: TrackerParams, first_id: int = 0):
        self.params = params
        self._next_id = first_id
        self._active: list[_Track] = []
        self.confirmed: set[int] = set()
        """Ids of tracks that count; ids outside it (unconfirmed tentative tracks) should be discarded."""

    def step(self, frame_idx: int, boxes: np.ndarray, scores: np.ndarray, cut_before: bool = False, appearance: np.ndarray | None = None) -> np.ndarray:
        """Associate this frame's detections; returns a track id per detection (-1: not tracked).
        ``appearance``: a unit descriptor per detection, for ``appearance_min``."""
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        scores = np.asarray(scores, np.float32).reshape(-1)
        if cut_before:
            self._active = []
        self._active = [t for t in self._active if frame_idx - t.last_frame <= self.params.max_gap_frames]
        ids = np.full(len(boxes), -1, np.int64)
        unmatched_tracks = list(range(len(self._active)))
        for confident in (True, False):
            det_idx = [i for i in range(len(boxes)) if ids[i] < 0 and (scores[i] >= self.params.high_thresh) == confident]
            if not det_idx or not unmatched_tracks:
                continue
            predicted = np.stack([self._active[t].predict(frame_idx) for t in unmatched_tracks])
            iou = association_scores(predicted, boxes[det_idx], self.params.match_iou, self.params.center_gate)
            if appearance is not None and self.params.appearance_min > 0:
                for r, t in enumerate(unmatched_tracks):
                    own = self._active[t].appearance
                    if own is not None:
                        iou[r, appearance[det_idx] @ own < self.params.appearance_min] = 0.0
            taken = []
            for r, c in greedy_match(iou, self.params.match_iou):
                track = self._active[unmatched_tracks[r]]
                track.update(frame_idx, boxes[det_idx[c]], appearance[det_idx[c]] if appearance is not None else None)
                track.hits += 1
                ids[det_idx[c]] = track.track_id
                if confident or (self.params.min_hits and track.hits >= self.params.min_hits):
                    self.confirmed.add(track.track_id)
                taken.append(unmatched_tracks[r])
            unmatched_tracks = [t for t in unmatched_tracks if t not in taken]
        for i in range(len(boxes)):
            confident = scores[i] >= self.params.high_thresh
            if ids[i] < 0 and (confident or self.params.min_hits):
                track = _Track(self._next_id, frame_idx, boxes[i].copy(), appearance=appearance[i].copy() if appearance is not None else None)
                self._next_id += 1
                self._active.append(track)
                ids[i] = track.track_id
                if confident or self.params.min_hits <= 1:
                    self.confirmed.add(track.track_id)
        return ids

    @property
    def next_id(self) -> int:
        return self._next_id
