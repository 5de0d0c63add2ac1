"""``FrameFaces``: the one shape a detection has from the detector actor to the segment file.

The detector actor fills one per sampled frame; it crosses Ray Data as bytes (:meth:`to_bytes`), the
driver buffers them per segment and :mod:`pipelines.segment_store` writes them as Parquet rows.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field

import numpy as np

from .appearance import DIM


@dataclass
class FrameFaces:
    """Faces found in one sampled frame, in source-frame pixels.

    ``segment_sampled_total`` is -1 except on a segment's last sampled frame, where it holds how many
    frames the segment sampled, so the consumer knows when every frame of it has come through,
    whatever order the detector pool returns them in.
    """

    segment: int
    frame_idx: int
    ts: float
    cuts: list[int]
    segment_sampled_total: int
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))  # (n, 4) x1 y1 x2 y2
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # (n,)
    landmarks: np.ndarray = field(default_factory=lambda: np.zeros((0, 10), np.float32))  # (n, 10): 5 (x, y)
    blur: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # (n,) Laplacian variance of the chip
    contrast: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # (n,) gray-level std of the chip
    chips: list[bytes] = field(default_factory=list)  # n aligned 112x112 JPEG chips
    appearance: np.ndarray = field(default_factory=lambda: np.zeros((0, DIM), np.float32))  # (n, DIM) colour descriptors of the chips
    work_s: dict[str, float] = field(default_factory=dict)  # seconds this frame cost, by kind (decode, cuts, convert, resize, detect, chips)

    def __len__(self) -> int:
        return len(self.scores)

    def to_bytes(self) -> bytes:
        return pickle.dumps(self, protocol=5)

    @staticmethod
    def from_bytes(blob: bytes) -> FrameFaces:
        value = pickle.loads(blob)
        if not isinstance(value, FrameFaces):
            raise TypeError(f"expected FrameFaces, got {type(value).__name__}")
        return value
