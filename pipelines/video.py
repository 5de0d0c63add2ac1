"""Video probing, segment planning and single-pass segment decoding with shot-cut detection.

Each segment is decoded once: every frame is reduced to a 64x36 HSV thumbnail for cut detection, and
only sampled frames (``frame_idx % stride == 0``) are converted to full-resolution BGR arrays. A segment
decoder seeks to the key frame before ``start_frame - 1`` so the cut test at its first frame sees the
previous frame; the only frames decoded twice in a run are those seek pre-rolls.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import cv2
import numpy as np

from .schemas import Segment, VideoMeta

THUMB_SIZE = (64, 36)
SCALER_THREADS = 1
"""Threads per PyAV pixel conversion. PyAV's default (0: one per core, for every call) made the
64x36 cut thumbnails cost 3.6 ms per 1080p frame on a 16-core GPU host, half of a detector actor's
time, because every actor (one per CPU) converts frames at once; one thread gives identical pixels."""


class VideoError(ValueError):
    """The input is not a readable, complete video. The message says what is wrong."""


def _content_id(path: Path, size: int) -> str:
    digest = hashlib.sha1(str(size).encode())
    with path.open("rb") as fh:
        digest.update(fh.read(1 << 20))
        if size > 2 << 20:
            fh.seek(-(1 << 20), 2)
            digest.update(fh.read(1 << 20))
    return digest.hexdigest()[:16]


def probe_video(path: str | Path) -> VideoMeta:
    """Open the file, read its metadata, and decode its first and last second.

    Raises :class:`VideoError` for a missing, empty, non-video, unreadable or truncated file, before any
    distributed work starts.
    """
    p = Path(path)
    if not p.exists():
        raise VideoError(f"video not found: {p}")
    if not p.is_file():
        raise VideoError(f"not a file: {p}")
    size = p.stat().st_size
    if size == 0:
        raise VideoError(f"video file is empty: {p}")
    try:
        container = av.open(str(p))
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise VideoError(f"cannot read {p} as a video ({exc}); it may be truncated or not a video file") from None
    with container:
        if not container.streams.video:
            raise VideoError(f"{p} has no video stream")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        if not rate or float(rate) <= 0:
            raise VideoError(f"{p}: cannot determine the frame rate")
        fps = float(rate)
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1_000_000
        else:
            duration = 0.0
        frame_count = int(stream.frames) if stream.frames else int(round(duration * fps))
        if frame_count <= 0:
            raise VideoError(f"{p}: the video has no frames")
        width, height = stream.codec_context.width, stream.codec_context.height
        codec = stream.codec_context.name
        try:
            first = next(container.decode(stream), None)
        except av.error.FFmpegError as exc:
            raise VideoError(f"{p}: cannot decode the first frame ({exc})") from None
        if first is None:
            raise VideoError(f"{p}: no frame could be decoded")
        start_time = float(first.time or 0.0)
        # Decode the last second: a file cut short (with its index intact) fails here.
        tail_ok = _decodes_near(container, stream, start_time + max(0.0, (frame_count - 1) / fps - 1.0), fps)
        if not tail_ok:
            raise VideoError(f"{p}: frames near the end (t={frame_count / fps:.1f}s) cannot be decoded; the file is truncated or corrupt")
    return VideoMeta(
        path=str(p.resolve()),
        fps=fps,
        frame_count=frame_count,
        duration_s=frame_count / fps,
        width=width,
        height=height,
        codec=codec,
        size_bytes=size,
        content_id=_content_id(p, size),
    )


def _decodes_near(container, stream, t: float, fps: float) -> bool:
    try:
        container.seek(int(t / stream.time_base), stream=stream, backward=True, any_frame=False)
        for frame in container.decode(stream):
            if frame.time is not None and frame.time >= t - 1.0 / fps:
                return True
    except av.error.FFmpegError:
        return False
    return False


def sampling_stride(fps: float, detect_fps: float, stride: int | None) -> int:
    """stride = max(explicit stride, round(fps / detect_fps)), at least 1."""
    return max(1, stride or 1, int(round(fps / detect_fps)))


def plan_segments(frame_count: int, fps: float, segment_s: float, stride: int) -> list[Segment]:
    """Split ``[0, frame_count)`` into segments whose boundaries are multiples of ``stride``."""
    per = max(stride, int(round(segment_s * fps / stride)) * stride)
    n = max(1, math.ceil(frame_count / per))
    return [Segment(index=i, start_frame=i * per, end_frame=min(frame_count, (i + 1) * per)) for i in range(n)]


def plan_sampling(meta: VideoMeta, detect_fps: float, stride: int | None, segment_s: float) -> tuple[int, list[Segment]]:
    """(frame stride, time segments) for sampling ``meta`` at ``detect_fps`` (or an explicit ``stride``)."""
    step = sampling_stride(meta.fps, detect_fps, stride)
    return step, plan_segments(meta.frame_count, meta.fps, segment_s, step)


def hsv_thumb(frame: av.VideoFrame) -> np.ndarray:
    small = frame.reformat(width=THUMB_SIZE[0], height=THUMB_SIZE[1], format="bgr24", threads=SCALER_THREADS).to_ndarray()
    return cv2.cvtColor(small, cv2.COLOR_BGR2HSV).astype(np.int16)


def cut_score(prev: np.ndarray, cur: np.ndarray) -> float:
    return float(np.abs(cur - prev).mean())


@dataclass
class SampledFrame:
    frame_idx: int
    ts: float
    image: np.ndarray
    cuts: list[int] = field(default_factory=list)
    """Cut frames in ``[frame_idx, next sampled frame)``, within the segment."""


@dataclass
class SegmentDecodeResult:
    frames_decoded: int = 0
    cut_frames: list[int] = field(default_factory=list)


def decode_segment(
    path: str,
    segment: Segment,
    fps: float,
    stride: int,
    cut_threshold: float,
    min_shot_frames: int,
    is_last: bool,
    result: SegmentDecodeResult | None = None,
) -> Iterator[SampledFrame]:
    """Yield the sampled frames of ``segment``, each carrying the shot cuts up to the next sample.

    Raises :class:`VideoError` when the segment cannot be decoded fully (corrupt or truncated data).
    """
    result = result if result is not None else SegmentDecodeResult()
    start, end = segment.start_frame, segment.end_frame
    pending: SampledFrame | None = None
    prev_thumb: np.ndarray | None = None
    last_cut = -(10**9)
    expected = end - start
    try:
        container = av.open(path)
    except av.error.FFmpegError as exc:
        raise VideoError(f"cannot open {path}: {exc}") from None
    with container:
        stream = container.streams.video[0]
        stream.thread_type = "SLICE"
        t0 = None
        seek_frame = max(0, start - 1)
        if seek_frame > 0:
            container.seek(int(seek_frame / fps / stream.time_base), stream=stream, backward=True, any_frame=False)  # type: ignore[operator]  # a video stream always has a time base
        first_time = _stream_start(container, stream)
        try:
            for frame in container.decode(stream):
                if frame.time is None:
                    continue
                if t0 is None:
                    t0 = first_time if first_time is not None else float(frame.time)
                idx = int(round((float(frame.time) - t0) * fps))
                if idx < seek_frame:
                    continue
                if idx >= end:
                    break
                thumb = hsv_thumb(frame)
                if idx == start - 1:
                    prev_thumb = thumb
                    continue
                result.frames_decoded += 1
                is_cut = prev_thumb is not None and idx - last_cut >= min_shot_frames and cut_score(prev_thumb, thumb) > cut_threshold
                prev_thumb = thumb
                if is_cut:
                    last_cut = idx
                    result.cut_frames.append(idx)
                if idx % stride == 0:
                    if pending is not None:
                        yield pending
                    pending = SampledFrame(idx, idx / fps, frame.to_ndarray(format="bgr24", threads=SCALER_THREADS), [idx] if is_cut else [])
                elif is_cut and pending is not None:
                    pending.cuts.append(idx)
        except av.error.FFmpegError as exc:
            raise VideoError(f"{path}: decoding failed near frame {start + result.frames_decoded} ({exc}); the file is corrupt") from None
    if pending is not None:
        yield pending
    shortfall = expected - result.frames_decoded
    tolerance = max(2, int(round(fps))) if is_last else 1
    if shortfall > tolerance:
        raise VideoError(
            f"{path}: decoded {result.frames_decoded} of {expected} frames in segment {segment.index} "
            f"(frames {start}-{end - 1}); the file is truncated or corrupt"
        )


def _stream_start(container, stream) -> float | None:
    """Presentation time of the first frame (videos need not start at t=0)."""
    if stream.start_time is not None:
        return float(stream.start_time * stream.time_base)
    return None


def read_frame_at(path: str, ts: float) -> np.ndarray:
    """The BGR frame shown at time ``ts`` (for previews and clips)."""
    with av.open(path) as container:
        stream = container.streams.video[0]
        start = _stream_start(container, stream) or 0.0
        container.seek(int((start + ts) / stream.time_base), stream=stream, backward=True, any_frame=False)  # type: ignore[operator]  # a video stream always has a time base
        last = None
        for frame in container.decode(stream):
            if frame.time is None:
                continue
            if float(frame.time) - start > ts + 1e-6:
                break
            last = frame
        if last is None:
            raise VideoError(f"{path}: no frame at {ts:.3f}s")
        return last.to_ndarray(format="bgr24")


def summarize_cuts(cuts: list[int], min_shot_frames: int) -> list[int]:
    """Merge per-segment cut lists: sorted, unique, no two closer than ``min_shot_frames``."""
    out: list[int] = []
    for c in sorted(set(cuts)):
        if c <= 0:
            continue
        if out and c - out[-1] < min_shot_frames:
            continue
        out.append(c)
    return out
