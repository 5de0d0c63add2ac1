"""Video probing, segment planning and single-pass segment decoding with shot-cut detection.

Each segment is decoded once, and only as far as needed: frames that no other frame references and
no sample needs are dropped by the decoder unread; every decoded frame is reduced to a 64x36 HSV
thumbnail for cut detection; only sampled frames (``frame_idx % stride == 0``) are converted to
full-resolution BGR arrays. A segment decoder seeks
to the key frame before ``start_frame - 1`` so the cut test at its first frame sees the previous frame;
the only frames decoded twice in a run are those seek pre-rolls.
"""

from __future__ import annotations

import hashlib
import math
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


SKIPPABLE_CODECS = frozenset({"h264", "hevc"})
"""Codecs whose packets each hold one picture with its own presentation time, so the decoder can be
told, packet by packet, which pictures it may drop. Others are decoded whole: MPEG-4 part 2 in AVI
packs B-frames into the previous packet (its presentation times name the wrong picture), and VP9/AV1
hide reference pictures in superframes."""

THUMB_INTERPOLATION = "FAST_BILINEAR"
"""Scaler for the cut thumbnails. FAST_BILINEAR takes 0.10 ms per 720p frame against 0.50 ms for the
default BILINEAR (a fifth of all decoding work went to thumbnails); its cut scores differ from
BILINEAR's by at most 2.7 of the 0-255 scale, and on the benchmark episodes no frame changed side of
the cut threshold (cuts score far above it, camera motion far below)."""


def hsv_thumb(frame: av.VideoFrame) -> np.ndarray:
    small = frame.reformat(width=THUMB_SIZE[0], height=THUMB_SIZE[1], format="bgr24", interpolation=THUMB_INTERPOLATION, threads=SCALER_THREADS).to_ndarray()
    return cv2.cvtColor(small, cv2.COLOR_BGR2HSV).astype(np.int16)


def cut_score(prev: np.ndarray, cur: np.ndarray) -> float:
    return float(np.abs(cur - prev).mean())


@dataclass(frozen=True)
class DecodeOptions:
    """How a segment is decoded (each knob's trade-off is documented in ``DetectTrackConfig``)."""

    stride: int
    cut_threshold: float
    min_shot_frames: int
    all_frames: bool = False
    """False: reference frames and sampled frames only (see :func:`decode_segment`)."""
    hw_decode: bool = False
    """True: NVIDIA's hardware decoder (NVDEC, through FFmpeg's CUDA hwaccel) decodes where it can (see
    :func:`open_video`); False: the CPU decodes."""
    nvdec_share: float = 1.0
    """With ``hw_decode``, the share of segments given to NVDEC (spread evenly by segment index); the
    rest are decoded on the CPU (see :func:`segment_on_nvdec`)."""


def segment_on_nvdec(index: int, options: DecodeOptions) -> bool:
    """Whether segment ``index`` goes to NVDEC: ``nvdec_share`` of the segments, evenly spread, so a
    node's NVDEC engines and its CPU cores decode side by side."""
    share = min(1.0, max(0.0, options.nvdec_share)) if options.hw_decode else 0.0
    return math.floor((index + 1) * share) > math.floor(index * share)


@dataclass
class SegmentDecodeResult:
    frames_decoded: int = 0
    cut_frames: list[int] = field(default_factory=list)
    decoder: str = "cpu"
    """``cpu`` or ``nvdec``: which decoder produced the segment's pictures."""


NVDEC_OUTPUT_FORMATS = frozenset({"nv12", "p010le", "p016le"})
"""Pixel formats NVDEC hands back (8-bit and high-bit-depth 4:2:0); FFmpeg's software H.264/HEVC
decoders never produce them, so a frame in one of them was decoded on the GPU."""

NVDEC_OPTIONS: dict[str, object] = {"primary_ctx": "1"}
"""FFmpeg's CUDA device options: share the process's primary CUDA context (the one onnxruntime's CUDA
provider uses) instead of creating a context per opened segment, which costs ~0.1-0.3 s and GPU memory."""


def open_video(path: str, hw_decode: bool = False):
    """``av.open(path)``, with NVDEC attached when ``hw_decode``.

    Falling back is FFmpeg's own: when the CUDA device cannot be created (no GPU, no driver) the file is
    opened for the CPU decoder; when NVDEC cannot decode the stream (a codec or profile it lacks, no
    ``libnvcuvid`` in the driver install) FFmpeg decodes it in software. Which one ran is read off the
    pictures (:data:`NVDEC_OUTPUT_FORMATS`) and reported, never assumed.
    """
    if hw_decode:
        try:
            from av.codec.hwaccel import HWAccel

            return av.open(path, hwaccel=HWAccel("cuda", allow_software_fallback=True, options=NVDEC_OPTIONS))
        except (av.error.FFmpegError, NotImplementedError, ValueError):
            pass
    return av.open(path)


def stream_start(container, stream) -> float | None:
    """Presentation time of the first frame (videos need not start at t=0)."""
    if stream.start_time is not None:
        return float(stream.start_time * stream.time_base)
    return None


def read_frame_at(path: str, ts: float) -> np.ndarray:
    """The BGR frame shown at time ``ts`` (for previews and clips)."""
    with av.open(path) as container:
        stream = container.streams.video[0]
        start = stream_start(container, stream) or 0.0
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
