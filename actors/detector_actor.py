"""The detector actor: a Ray Data ``map_batches`` class UDF, loaded once per actor and fed segments.

It resizes each sampled frame for detection, maps boxes back to source pixels, aligns a 112x112 chip
for every face from the full-resolution frame, measures its quality and JPEG-encodes it, so faces are
later embedded without decoding the video again. Its output is one :class:`~actors.faces.FrameFaces`
(the frame's :class:`~actors.detections.Detections`) per sampled frame.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from actors.appearance import DIM, chip_descriptor
from actors.detections import Detections
from actors.faces import FrameBatch, FrameFaces, SampledFrame, batches_with_total
from actors.keyframes import KeyframeDetector, KeyframeSettings
from actors.models.align import CHIP_JPEG_QUALITY, align_face, chip_quality
from actors.models.config import ModelConfig
from actors.models.registry import load_detector

FrameSource = Callable[[dict[str, np.ndarray]], Iterator[FrameBatch]]
"""Segment descriptors in, batches of decoded frames out: :func:`pipelines.frame_source.decode_segments`,
bound to a video."""


CRASH_ONCE_ENV = "SCREENALYTICS_TEST_DETECTOR_CRASH_ONCE"
"""Fault injection for the tests: when this names a file that does not exist yet, the first detector
actor to start its second segment creates the file and exits its process at once (as a SIGKILL or an
out-of-memory kill would), so the stage's recovery from a dead actor is tested for real."""


def _die_if_asked(segments_started: int) -> None:
    marker = os.environ.get(CRASH_ONCE_ENV)
    if marker and segments_started >= 2:
        try:
            with open(marker, "x"):
                pass
        except FileExistsError:
            return
        os._exit(1)


RESIZE_FILTER = cv2.INTER_LINEAR
"""How frames are scaled to detection size. Bilinear: 0.75 ms per 720p frame to 960x540, against
3.1 ms for the area filter, which was a sixth of an episode's detector time. Downscaling by 3/4,
bilinear reads every source pixel, so it does not alias as it would at 1/2 and below (1080p to 960
is 1/2: still 4 source pixels per output pixel, a mild softening). On the accuracy benchmark errors,
purity and recall did not move; one 0.2 s single-detection fragment at a frame edge became an extra
instead of joining its person (0.059 -> 0.095 extra clusters per person). The video scaler, straight
from the decoded picture, did the same for less saving."""


@dataclass(frozen=True)
class DetectorSettings:
    """The detection settings the actor applies (see ``pipelines.stage_settings.DetectTrackConfig`` for trade-offs)."""

    det_long_side: int
    det_thresh: float
    min_face_px: float
    keyframes: KeyframeSettings


class FaceDetectorWorker:
    """Detects faces in batches of frames (``detect_frames``) or in whole segments (``__call__``).

    As a Ray Data UDF it takes one segment descriptor per call and decodes that segment itself through
    ``frame_source``: every actor then owns a segment, segments are decoded in parallel across the pool,
    and frames never travel through the object store. (Letting Ray Data fuse a separate decode task into
    the actor stage instead bundled all segments into one actor's input.) Within a segment the detector
    runs on keyframes and faces are interpolated in between (:mod:`actors.keyframes`), unless
    ``keyframes.max_gap`` is 1: then every sampled frame is detected, in batches.
    """

    def __init__(self, model_config: dict[str, Any], settings: DetectorSettings, frames_per_batch: int, frame_source: FrameSource | None = None):
        cv2.setNumThreads(1)
        self.settings = settings
        self.detector = load_detector(ModelConfig(**model_config))
        self.frame_source = frame_source
        self.frames_per_batch = frames_per_batch
        self._segments_started = 0

    def __call__(self, segments: dict[str, np.ndarray]) -> Iterator[dict[str, np.ndarray]]:
        if self.frame_source is None:
            raise RuntimeError("FaceDetectorWorker was built without a frame source")
        self._segments_started += 1
        _die_if_asked(self._segments_started)
        for segment, batches in itertools.groupby(self.frame_source(segments), key=lambda b: b.segment):
            if self.settings.keyframes.max_gap <= 1:
                for batch in batches:
                    yield _as_rows(self.detect_frames(batch))
            else:
                yield from self._on_keyframes(segment, batches)

    def _on_keyframes(self, segment: int, batches: Iterator[FrameBatch]) -> Iterator[dict[str, np.ndarray]]:
        """One segment's frames, detected on keyframes and interpolated between them; the last rows
        carry the segment's frame count (see :class:`~actors.faces.FrameBatch`)."""
        work: dict[int, dict[str, float]] = {}

        def detect(frames: list[SampledFrame]) -> list[Detections]:
            found = self._faces_of(frames)
            for frame, (_, spent) in zip(frames, found):
                work[frame.frame_idx] = spent
            return [faces for faces, _ in found]

        keyframer = KeyframeDetector(detect, self.settings.keyframes)
        found = keyframer.run(f for batch in batches for f in batch.frames)
        for held, total in batches_with_total(found, self.frames_per_batch):
            out = [FrameFaces(segment, f.frame_idx, f.ts, f.cuts, total, faces, {**f.work_s, **work.pop(f.frame_idx, {})}) for f, faces in held]
            if total >= 0:
                out[-1].work_s["keyframes"] = keyframer.judge_s  # the segment's deciding and interpolating, on its last frame
            yield _as_rows(out)

    def detect_frames(self, batch: FrameBatch) -> list[FrameFaces]:
        """Faces of each frame of ``batch``, detected at ``det_long_side``; chips are cut from the
        full-size frame."""
        return [
            FrameFaces(batch.segment, frame.frame_idx, frame.ts, frame.cuts, batch.sampled_total, faces, {**frame.work_s, **spent})
            for frame, (faces, spent) in zip(batch.frames, self._faces_of(batch.frames))
        ]

    def _faces_of(self, frames: list[SampledFrame]) -> list[tuple[Detections, dict[str, float]]]:
        """Each frame's faces (every column the segment files hold) and the seconds they cost by kind.
        See ``RESIZE_FILTER`` for how frames are scaled."""
        images = [f.image for f in frames]
        n = len(images)
        h, w = images[0].shape[:2]
        began = time.perf_counter()
        scale = min(1.0, self.settings.det_long_side / max(h, w))
        small = [cv2.resize(im, (round(w * scale), round(h * scale)), interpolation=RESIZE_FILTER) if scale < 1 else im for im in images]
        resize_s = (time.perf_counter() - began) / n
        began = time.perf_counter()
        results = self.detector.detect(small, self.settings.det_thresh)
        detect_s = (time.perf_counter() - began) / n
        out = []
        for frame, dets in zip(frames, results):
            began = time.perf_counter()
            dets = dets.copy()
            dets[:, :4] /= scale
            dets[:, 5:] /= scale
            dets[:, [0, 2]] = dets[:, [0, 2]].clip(0, w)
            dets[:, [1, 3]] = dets[:, [1, 3]].clip(0, h)
            dets = dets[(dets[:, 3] - dets[:, 1]) >= self.settings.min_face_px].astype(np.float32)
            quality = np.zeros((len(dets), 2), np.float32)
            appearance = np.zeros((len(dets), DIM), np.float32)
            chips = []
            for k, det in enumerate(dets):
                chip = align_face(frame.image, det[5:15])
                quality[k] = chip_quality(chip)
                ok, jpeg = cv2.imencode(".jpg", chip, [cv2.IMWRITE_JPEG_QUALITY, CHIP_JPEG_QUALITY])
                chips.append(jpeg.tobytes())
                appearance[k] = chip_descriptor(chips[-1])
            faces = Detections.from_detector(
                frame.frame_idx,
                dets,
                ts=np.full(len(dets), frame.ts),
                blur=quality[:, 0],
                contrast=quality[:, 1],
                appearance=appearance,
                chip_jpeg=chips,
                detected=np.ones(len(dets), bool),
            )
            out.append((faces, {"resize": resize_s, "detect": detect_s, "chips": time.perf_counter() - began}))
        return out


def _as_rows(frames: list[FrameFaces]) -> dict[str, np.ndarray]:
    return {"frame": np.array([f.to_bytes() for f in frames], dtype=object)}
