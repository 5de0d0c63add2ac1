"""Decoding one segment of a video: its sampled frames, the shot cuts between them, and the work each took.

Unless ``options.all_frames`` (or the codec is not in ``SKIPPABLE_CODECS``), frames that no other frame
references and no sample needs are not decoded at all (the decoder drops them before any work): with
x264's default B-frames that is about a third of the frames and 20% of decoding time. Cuts are then
found between the frames that are decoded, so a cut that falls on a skipped frame is placed on the next
decoded one, at most the run of skipped frames late (two frames with x264's defaults); where the
encoder starts a new picture group at the cut (x264 does by default) the decoded frame is the cut
itself. Sampled frames are always decoded, so which shot a detection belongs to never changes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Optional

import av
import numpy as np

from actors.faces import SampledFrame

from .schemas import Segment
from .video import (
    NVDEC_OUTPUT_FORMATS,
    SCALER_THREADS,
    SKIPPABLE_CODECS,
    DecodeOptions,
    SegmentDecodeResult,
    VideoError,
    cut_score,
    hsv_thumb,
    open_video,
    segment_on_nvdec,
    stream_start,
)


class WorkClock:
    """Seconds of work by kind, handed out and reset with :meth:`take`."""

    def __init__(self) -> None:
        self._seconds: dict[str, float] = {}

    def add(self, kind: str, started: float) -> None:
        self._seconds[kind] = self._seconds.get(kind, 0.0) + time.perf_counter() - started

    def take(self) -> dict[str, float]:
        out, self._seconds = self._seconds, {}
        return out


@dataclass
class _SegmentDecoder:
    """What decoding one segment has seen so far, and what each decoded frame does to it."""

    segment: Segment
    fps: float
    options: DecodeOptions
    result: SegmentDecodeResult
    clock: WorkClock = field(default_factory=WorkClock)
    t0: Optional[float] = None
    pending: Optional[SampledFrame] = None
    prev_thumb: Optional[np.ndarray] = None
    last_cut: int = -(10**9)
    sampled: int = 0
    decode_kind: str = "decode"

    def __post_init__(self) -> None:
        self.last_idx = self.covered = self.segment.start_frame - 1
        self.seek_frame = max(0, self.segment.start_frame - 1)

    def skip_unneeded(self, packet: av.Packet, time_base: Any, codec: Any) -> None:
        """Tell the decoder to drop the packet's picture when nothing needs it (see the module)."""
        if packet.pts is None:
            codec.skip_frame = "DEFAULT"
            return
        idx = int(round((float(packet.pts * time_base) - self.t0) * self.fps))  # type: ignore[operator]  # skipping implies t0
        start = self.segment.start_frame
        codec.skip_frame = "DEFAULT" if ((idx >= start and idx % self.options.stride == 0) or idx == start - 1) else "NONREF"
        if idx < self.segment.end_frame:
            self.covered = max(self.covered, idx)  # a skipped frame's data is there all the same

    def take(self, frame: av.VideoFrame) -> tuple[Optional[SampledFrame], bool]:
        """(the sampled frame now complete, to hand out; whether the segment's end was reached)."""
        if frame.time is None:
            return None, False
        if self.result.frames_decoded == 0 and frame.format.name in NVDEC_OUTPUT_FORMATS:
            self.result.decoder, self.decode_kind = "nvdec", "decode_nvdec"
        if self.t0 is None:
            self.t0 = float(frame.time)
        idx = int(round((float(frame.time) - self.t0) * self.fps))
        if idx < self.seek_frame:
            return None, False
        if idx >= self.segment.end_frame:
            return None, True
        began = time.perf_counter()
        thumb = hsv_thumb(frame)
        if idx == self.segment.start_frame - 1:
            self.prev_thumb = thumb
            self.clock.add("cuts", began)
            return None, False
        self.result.frames_decoded += 1
        self.last_idx = idx
        self.covered = max(self.covered, idx)
        is_cut = (
            self.prev_thumb is not None
            and idx - self.last_cut >= self.options.min_shot_frames
            and cut_score(self.prev_thumb, thumb) > self.options.cut_threshold
        )
        self.prev_thumb = thumb
        self.clock.add("cuts", began)
        if is_cut:
            self.last_cut = idx
            self.result.cut_frames.append(idx)
        if idx % self.options.stride != 0:
            if is_cut and self.pending is not None:
                self.pending.cuts.append(idx)
            return None, False
        self.sampled += 1
        done = self.pending
        convert: Callable[[], np.ndarray] = partial(frame.to_ndarray, format="bgr24", threads=SCALER_THREADS)
        pixels: np.ndarray | Callable[[], np.ndarray] = convert
        if self.decode_kind != "decode":  # NVDEC's pictures come from a small pool of surfaces: never hold them
            began = time.perf_counter()
            pixels = convert()
            self.clock.add("convert", began)
        self.pending = SampledFrame(idx, idx / self.fps, pixels, [idx] if is_cut else [], self.clock.take(), thumb, (frame.height, frame.width))
        return done, False

    def last(self) -> Optional[SampledFrame]:
        """The last sampled frame, with the work done since it was decoded."""
        if self.pending is not None:
            for kind, seconds in self.clock.take().items():
                self.pending.work_s[kind] = self.pending.work_s.get(kind, 0.0) + seconds
        return self.pending

    def check_complete(self, path: str, is_last: bool) -> None:
        """VideoError unless packets reached the segment's last frame and every sampled frame was decoded
        (the last segment may fall short by a second: container durations round up)."""
        start, end, stride = self.segment.start_frame, self.segment.end_frame, self.options.stride
        shortfall = end - 1 - self.covered
        missing_samples = len(range(start, self.covered + 1, stride)) - self.sampled
        tolerance = max(2, int(round(self.fps))) if is_last else 1
        if shortfall > tolerance or missing_samples > (1 if is_last else 0):
            raise VideoError(
                f"{path}: segment {self.segment.index} (frames {start}-{end - 1}) ends at frame {self.covered} with "
                f"{missing_samples} sampled frames undecodable; the file is truncated or corrupt"
            )


def decode_segment(
    path: str,
    segment: Segment,
    fps: float,
    options: DecodeOptions,
    is_last: bool,
    result: SegmentDecodeResult | None = None,
) -> Iterator[SampledFrame]:
    """Yield the sampled frames of ``segment``, each carrying the shot cuts up to the next sample.

    Raises :class:`VideoError` when the segment cannot be decoded fully (corrupt or truncated data).
    """
    state = _SegmentDecoder(segment, fps, options, result if result is not None else SegmentDecodeResult())
    try:
        container = open_video(path, segment_on_nvdec(segment.index, options))
    except av.error.FFmpegError as exc:
        raise VideoError(f"cannot open {path}: {exc}") from None
    with container:
        stream = container.streams.video[0]
        stream.thread_type = "SLICE"
        codec = stream.codec_context
        if state.seek_frame > 0:
            container.seek(int(state.seek_frame / fps / stream.time_base), stream=stream, backward=True, any_frame=False)  # type: ignore[operator]  # a video stream always has a time base
        state.t0 = stream_start(container, stream)
        skipping = not options.all_frames and state.t0 is not None and codec.name in SKIPPABLE_CODECS
        try:
            for packet in container.demux(stream):
                if skipping:
                    state.skip_unneeded(packet, stream.time_base, codec)
                began = time.perf_counter()
                frames = codec.decode(packet)
                state.clock.add(state.decode_kind, began)
                stop = False
                for frame in frames:
                    done, stop = state.take(frame)
                    if done is not None:
                        yield done
                    if stop:
                        break
                if stop:
                    break
        except av.error.FFmpegError as exc:
            raise VideoError(f"{path}: decoding failed near frame {state.last_idx + 1} ({exc}); the file is corrupt") from None
    if (last := state.last()) is not None:
        yield last
    state.check_complete(path, is_last)
