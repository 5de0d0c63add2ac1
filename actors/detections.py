"""``Detections``: the one shape a detected face has from the detector actor to the artifact writer.

Columns, one row per face (the idea of supervision's ``Detections``): where (``boxes``, ``landmarks``,
source-frame pixels), how sure (``scores``), when (``frame_idx``), which face of its frame (``det_idx``)
and which track (``track_id``, -1 until the tracker assigns one), plus per-face columns in ``extra``
(``ts``, ``blur``, ``contrast``, ``appearance``, ``chip_jpeg``...). Selecting rows (a mask, a slice or
indices) selects them in every column; :meth:`concat` stacks them. The detector's raw ``(n, 15)`` rows
come in through :meth:`from_detector`; pydantic rows (``DetectionRow``) exist only where JSON lines are
written.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Detections:
    frame_idx: np.ndarray  # (n,) int64
    boxes: np.ndarray  # (n, 4) float32 x1 y1 x2 y2
    scores: np.ndarray  # (n,) float32
    landmarks: np.ndarray  # (n, 10) float32: 5 (x, y) points
    det_idx: np.ndarray  # (n,) int32: the face's index within its frame
    track_id: np.ndarray  # (n,) int64: -1 when untracked
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    """Further per-face columns, each with n rows."""

    def __post_init__(self) -> None:
        n = len(self.scores)
        columns = {
            "frame_idx": self.frame_idx,
            "boxes": self.boxes,
            "landmarks": self.landmarks,
            "det_idx": self.det_idx,
            "track_id": self.track_id,
            **self.extra,
        }
        wrong = {name: len(col) for name, col in columns.items() if len(col) != n}
        if wrong:
            raise ValueError(f"every column needs {n} rows (one per score); got {wrong}")

    @classmethod
    def empty(cls) -> Detections:
        return cls(
            frame_idx=np.zeros(0, np.int64),
            boxes=np.zeros((0, 4), np.float32),
            scores=np.zeros(0, np.float32),
            landmarks=np.zeros((0, 10), np.float32),
            det_idx=np.zeros(0, np.int32),
            track_id=np.full(0, -1, np.int64),
        )

    @classmethod
    def from_detector(cls, frame_idx: int, rows: np.ndarray, **extra: Any) -> Detections:
        """One frame's faces from a detector's ``(n, 15)`` rows (box, score, 5 landmarks)."""
        rows = np.asarray(rows, np.float32).reshape(-1, 15)
        n = len(rows)
        return cls(
            frame_idx=np.full(n, frame_idx, np.int64),
            boxes=rows[:, :4],
            scores=rows[:, 4],
            landmarks=rows[:, 5:15],
            det_idx=np.arange(n, dtype=np.int32),
            track_id=np.full(n, -1, np.int64),
            extra={k: np.asarray(v) if not isinstance(v, list) else _objects(v) for k, v in extra.items()},
        )

    @classmethod
    def concat(cls, parts: Sequence[Detections]) -> Detections:
        """Rows of ``parts`` in order; an extra column must be in every part (or none)."""
        parts = [p for p in parts if len(p)] or list(parts[:1])
        if not parts:
            return cls.empty()
        names = set(parts[0].extra)
        if any(set(p.extra) != names for p in parts):
            raise ValueError(f"extra columns differ between parts: {[sorted(p.extra) for p in parts]}")
        return cls(
            frame_idx=np.concatenate([p.frame_idx for p in parts]),
            boxes=np.concatenate([p.boxes for p in parts]),
            scores=np.concatenate([p.scores for p in parts]),
            landmarks=np.concatenate([p.landmarks for p in parts]),
            det_idx=np.concatenate([p.det_idx for p in parts]),
            track_id=np.concatenate([p.track_id for p in parts]),
            extra={k: np.concatenate([p.extra[k] for p in parts]) for k in sorted(names)},
        )

    def __len__(self) -> int:
        return len(self.scores)

    def __getitem__(self, rows: Any) -> Detections:
        return Detections(
            frame_idx=self.frame_idx[rows],
            boxes=self.boxes[rows],
            scores=self.scores[rows],
            landmarks=self.landmarks[rows],
            det_idx=self.det_idx[rows],
            track_id=self.track_id[rows],
            extra={k: v[rows] for k, v in self.extra.items()},
        )

    @property
    def detected(self) -> np.ndarray:
        """Which rows the detector found (False: interpolated between keyframes, see
        :mod:`actors.keyframes`); all of them when there is no ``detected`` column."""
        column = self.extra.get("detected")
        return np.ones(len(self), bool) if column is None else np.asarray(column, bool)

    def by_frame(self, frames: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
        """For each of ``frames`` in order: (frame, the indices of its rows), empty for a frame with no face."""
        order = np.argsort(self.frame_idx, kind="stable")
        sorted_frames = self.frame_idx[order]
        for f in frames:
            lo, hi = np.searchsorted(sorted_frames, [f, f + 1])
            yield f, order[lo:hi]

    def with_columns(self, **columns: np.ndarray) -> Detections:
        """A copy with ``track_id`` or extra columns set (the arrays are shared, not copied)."""
        track_id = columns.pop("track_id", self.track_id)
        return Detections(self.frame_idx, self.boxes, self.scores, self.landmarks, self.det_idx, np.asarray(track_id, np.int64), {**self.extra, **columns})


def _objects(values: list[Any]) -> np.ndarray:
    """A 1-d object column (bytes, strings) that numpy does not try to widen into a 2-d array."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of ``(n, 4)`` and ``(m, 4)`` xyxy boxes."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float32)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)
