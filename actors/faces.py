"""What travels between the frame source, the detector actor and the driver, per sampled frame.

- :class:`SampledFrame`: a decoded frame (and the shot cuts up to the next sample);
- :class:`FrameBatch`: a few sampled frames of one segment, handed to the detector in the same process;
- :class:`FrameFaces`: a frame's :class:`~actors.detections.Detections` and what it cost; it crosses Ray
  Data as bytes (:meth:`FrameFaces.to_bytes`), the driver buffers them per segment and
  :mod:`pipelines.segment_store` writes each segment's detections as Parquet rows.
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from .detections import Detections

T = TypeVar("T")


def batches_with_total(items: Iterable[T], size: int) -> Iterator[tuple[list[T], int]]:
    """``items`` in lists of at most ``size``, each with -1, except the last, with how many items there
    were in all: one item is always held back, so the total is known when the last list goes out."""
    held: list[T] = []
    count = 0
    for item in items:
        count += 1
        held.append(item)
        if len(held) > size:
            yield held[:size], -1
            held = held[size:]
    if held:
        yield held, count


@dataclass
class SampledFrame:
    frame_idx: int
    ts: float
    pixels: np.ndarray | Callable[[], np.ndarray]
    """The BGR picture, or what makes it (the decoder's conversion, run on first use: frames whose faces
    are interpolated are never converted). Read it through :attr:`image`."""
    cuts: list[int] = field(default_factory=list)
    """Cut frames in ``[frame_idx, next sampled frame)``, within the segment."""
    work_s: dict[str, float] = field(default_factory=dict)
    """Seconds of work spent since the previous sampled frame, by kind (``decode``, ``cuts``,
    ``convert``): the profile of where decoding time goes."""
    thumb: np.ndarray | None = None
    """The frame's small HSV thumbnail (the one shot cuts are found with), for judging whether the
    picture changed between two detected frames (:mod:`actors.keyframes`)."""
    shape: tuple[int, int] = (0, 0)
    """(height, width) of the picture, known without converting it."""

    def __post_init__(self) -> None:
        if isinstance(self.pixels, np.ndarray):
            self.shape = (int(self.pixels.shape[0]), int(self.pixels.shape[1]))

    @property
    def image(self) -> np.ndarray:
        """The BGR picture, converted on first use (its seconds counted as ``convert`` work)."""
        if not isinstance(self.pixels, np.ndarray):
            began = time.perf_counter()
            self.pixels = self.pixels()
            self.work_s["convert"] = self.work_s.get("convert", 0.0) + time.perf_counter() - began
        return self.pixels


@dataclass
class FrameBatch:
    """Sampled frames of one segment. ``sampled_total`` is -1 except in a segment's last batch, where it
    holds how many frames the segment sampled, so the consumer knows when every frame of it has come
    through, whatever order the detector pool returns them in."""

    segment: int
    frames: list[SampledFrame]
    sampled_total: int = -1


@dataclass
class FrameFaces:
    """Faces found in one sampled frame (``faces``, with ``ts``, ``blur``, ``contrast``, ``appearance``
    and ``chip_jpeg`` columns), and the frame's place in its segment (see :class:`FrameBatch`)."""

    segment: int
    frame_idx: int
    ts: float
    cuts: list[int]
    segment_sampled_total: int
    faces: Detections = field(default_factory=Detections.empty)
    work_s: dict[str, float] = field(default_factory=dict)  # seconds this frame cost, by kind (decode, cuts, convert, resize, detect, chips)

    def __len__(self) -> int:
        return len(self.faces)

    def to_bytes(self) -> bytes:
        return pickle.dumps(self, protocol=5)

    @staticmethod
    def from_bytes(blob: bytes) -> FrameFaces:
        value = pickle.loads(blob)
        if not isinstance(value, FrameFaces):
            raise TypeError(f"expected FrameFaces, got {type(value).__name__}")
        return value
