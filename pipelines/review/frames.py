"""Frames and clips of an episode with named face boxes, for previews and review clips."""

from __future__ import annotations

import cv2

from ..artifacts import read_model
from ..layout import RunLayout
from ..registry import DETECTIONS, TRACK_METRICS, VIDEO
from ..schemas import VideoMeta
from ..storage import Storage
from ..video import read_frame_at
from .errors import Conflict
from .overlays import DetectionIndex, draw, render_clip

PREVIEW_JPEG_QUALITY = 90


def _index(storage: Storage, layout: RunLayout) -> tuple[DetectionIndex, VideoMeta, int]:
    meta = VIDEO.read(storage, layout)
    stride = TRACK_METRICS.read(storage, layout).stride
    return DetectionIndex(DETECTIONS.read(storage, layout)), meta, stride


def video_duration(storage: Storage, layout: RunLayout) -> float:
    key = VIDEO.key(layout)
    if not storage.exists(key):
        raise Conflict(f"no video metadata for {layout.ep_id}/{layout.run_id}: run the detect_track stage")
    return read_model(storage, key, VideoMeta).duration_s


def preview_jpeg(storage: Storage, layout: RunLayout, video_path: str, timestamp_s: float, labels: dict[int, str]) -> bytes:
    """The frame at ``timestamp_s`` with the nearest sampled frame's boxes, labelled (JPEG)."""
    index, meta, stride = _index(storage, layout)
    frame = read_frame_at(video_path, timestamp_s)
    image = draw(frame, index.near(int(round(timestamp_s * meta.fps)), stride), labels)
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, PREVIEW_JPEG_QUALITY])
    return jpeg.tobytes()


def clip_mp4(storage: Storage, layout: RunLayout, video_path: str, start_s: float, end_s: float, labels: dict[int, str]) -> bytes:
    """An MP4 of ``[start_s, min(end_s, duration))`` with labelled boxes."""
    index, meta, stride = _index(storage, layout)
    return render_clip(video_path, start_s, min(end_s, meta.duration_s), index, labels, stride, meta.fps)
