"""From sampled detections to on-screen seconds.

A face seen at sampled frames ``a..b`` (stride ``s``) appeared somewhere after the previous sample and
left before the next one. Its span is estimated as ``[a - (s-1)/2, b + 1 + (s-1)/2)`` frames: unbiased
for an entry or exit uniformly placed between samples, at most half a step off. When ``a`` is the first
sample of its shot, the span starts at the shot's first frame (the face was there at the cut); the same
at the end. Spans never leave their shot.
"""

from __future__ import annotations

from bisect import bisect_right

from ..schemas import Shot


def shot_index(shots: list[Shot], frame_idx: int, starts: list[int] | None = None) -> int:
    starts = starts if starts is not None else [s.start_frame for s in shots]
    return max(0, bisect_right(starts, frame_idx) - 1)


def detection_span(first_frame: int, last_frame: int, shot: Shot, stride: int, fps: float) -> tuple[float, float]:
    half = (stride - 1) / 2.0
    first_sample_in_shot = -(-shot.start_frame // stride) * stride
    last_sample_in_shot = ((shot.end_frame - 1) // stride) * stride
    start = shot.start_frame if first_frame <= first_sample_in_shot else max(shot.start_frame, first_frame - half)
    end = shot.end_frame if last_frame >= last_sample_in_shot else min(shot.end_frame, last_frame + 1 + half)
    return start / fps, end / fps


def build_shots(cut_frames: list[int], frame_count: int, fps: float) -> list[Shot]:
    bounds = [0] + [c for c in cut_frames if 0 < c < frame_count] + [frame_count]
    return [Shot(index=i, start_frame=a, end_frame=b, start_s=a / fps, end_s=b / fps) for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])) if b > a]
