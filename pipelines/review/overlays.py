"""Frames with named face boxes, for previews and clips."""

from __future__ import annotations

import zlib
from bisect import bisect_left

import cv2
import numpy as np

from ..schemas import DetectionRow

PALETTE = [(80, 200, 80), (60, 160, 255), (255, 120, 60), (200, 80, 200), (60, 220, 220), (220, 220, 60)]


class DetectionIndex:
    """Detections by frame, looked up at the nearest sampled frame."""

    def __init__(self, detections: list[DetectionRow]):
        self.by_frame: dict[int, list[DetectionRow]] = {}
        for d in detections:
            if d.track_id is not None:
                self.by_frame.setdefault(d.frame_idx, []).append(d)
        self.frames = sorted(self.by_frame)

    def near(self, frame_idx: int, max_distance: int) -> list[DetectionRow]:
        if not self.frames:
            return []
        i = bisect_left(self.frames, frame_idx)
        candidates = [f for f in (self.frames[i - 1] if i else None, self.frames[i] if i < len(self.frames) else None) if f is not None]
        best = min(candidates, key=lambda f: abs(f - frame_idx))
        return self.by_frame[best] if abs(best - frame_idx) <= max_distance else []


def draw(frame: np.ndarray, detections: list[DetectionRow], label_of: dict[int, str]) -> np.ndarray:
    out = frame.copy()
    scale = max(0.5, frame.shape[0] / 720)
    for d in detections:
        label = label_of.get(d.track_id or -1, f"track {d.track_id}")
        color = PALETTE[zlib.crc32(label.encode()) % len(PALETTE)]
        x1, y1, x2, y2 = (int(round(v)) for v in d.bbox_xyxy)
        cv2.rectangle(out, (x1, y1), (x2, y2), color, max(1, int(2 * scale)))
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, 1)
        cv2.rectangle(out, (x1, max(0, y1 - th - 8)), (x1 + tw + 6, y1), color, -1)
        cv2.putText(out, label, (x1 + 3, y1 - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, (0, 0, 0), max(1, int(scale)), cv2.LINE_AA)
    return out


def render_clip(path: str, start_s: float, end_s: float, index: DetectionIndex, label_of: dict[int, str], max_distance: int, fps_hint: float) -> bytes:
    """H.264 MP4 of ``[start_s, end_s)`` with named boxes drawn on every frame."""
    import os
    import tempfile
    from fractions import Fraction

    import av

    fd, tmp = tempfile.mkstemp(suffix=".mp4")
    os.close(fd)
    try:
        with av.open(path) as src, av.open(tmp, "w") as out:
            stream = src.streams.video[0]
            t0 = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0  # type: ignore[operator]  # a video stream always has a time base
            rate = stream.average_rate or Fraction(fps_hint).limit_denominator(1001)
            enc = out.add_stream("libx264", rate=rate)
            enc.width, enc.height, enc.pix_fmt = stream.codec_context.width, stream.codec_context.height, "yuv420p"
            enc.options = {"crf": "23", "preset": "veryfast"}
            src.seek(int((t0 + start_s) / stream.time_base), stream=stream, backward=True, any_frame=False)  # type: ignore[operator]  # a video stream always has a time base
            for frame in src.decode(stream):
                if frame.time is None:
                    continue
                t = float(frame.time) - t0
                if t < start_s - 1e-6:
                    continue
                if t >= end_s:
                    break
                image = draw(frame.to_ndarray(format="bgr24"), index.near(int(round(t * fps_hint)), max_distance), label_of)
                for packet in enc.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                    out.mux(packet)
            for packet in enc.encode():
                out.mux(packet)
        with open(tmp, "rb") as fh:
            return fh.read()
    finally:
        os.unlink(tmp)
