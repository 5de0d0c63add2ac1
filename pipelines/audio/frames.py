"""The segmentation model's output frames (one every ``FRAME_STEP`` samples, each seeing ``FRAME_SIZE``)
in episode seconds, both ways: a frame stands at the centre of what it sees and owns half a step either
side of it."""

from __future__ import annotations

from typing import Any

import numpy as np

from actors.models.segmentation import FRAME_SIZE, FRAME_STEP, RATE

from .resegment import _runs

HALF_STEP_S = FRAME_STEP / 2 / RATE


def frame_time(frames: Any, window_start: int = 0) -> Any:
    """Episode seconds at the centre of output frame(s) ``frames`` of a window starting at sample ``window_start``."""
    return (window_start + np.asarray(frames) * FRAME_STEP + FRAME_SIZE / 2) / RATE


def nearest_frame(seconds: Any) -> Any:
    """The frame (of a grid starting at sample 0) whose centre is nearest to ``seconds``: :func:`frame_time` inverted."""
    return np.round((np.asarray(seconds) * RATE - FRAME_SIZE / 2) / FRAME_STEP).astype(np.int64)


def frames_span(first: int, end: int, window_start: int = 0) -> tuple[float, float]:
    """Episode seconds frames ``[first, end)`` of a window starting at sample ``window_start`` own."""
    return float(frame_time(first, window_start)) - HALF_STEP_S, float(frame_time(end - 1, window_start)) + HALF_STEP_S


def frame_spans(mask: np.ndarray, window_start: int = 0) -> list[tuple[float, float]]:
    """Episode seconds of each run of true frames in ``mask``."""
    return [frames_span(a, b, window_start) for a, b in _runs(mask)]
