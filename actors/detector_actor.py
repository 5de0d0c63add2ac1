"""The detector actor: a Ray Data ``map_batches`` class UDF, loaded once per actor and fed batches of
frames. It resizes for detection, maps boxes back to source pixels, aligns a 112x112 chip for every
face from the full-resolution frame, measures its quality and JPEG-encodes it, so faces are later
embedded without decoding the video again."""

from __future__ import annotations

import pickle
from typing import Any, Iterator

import cv2
import numpy as np

from actors.models.align import align_face, chip_quality
from actors.models.registry import load_detector
from pipelines.config import DetectTrackConfig, ModelConfig

CHIP_JPEG_QUALITY = 95


def encode_payload(dets: np.ndarray, quality: np.ndarray, chips: list[bytes]) -> bytes:
    return pickle.dumps((dets.astype(np.float32), quality.astype(np.float32), chips), protocol=5)


def decode_payload(blob: bytes) -> tuple[np.ndarray, np.ndarray, list[bytes]]:
    return pickle.loads(blob)


class FaceDetectorWorker:
    """Detects faces in batches of frames (``detect_frames``) or in whole segments (``__call__``).

    As a Ray Data UDF it takes one segment descriptor per call and decodes that segment itself:
    every actor then owns a segment, segments are decoded in parallel across the pool, and frames
    never travel through the object store. (Letting Ray Data fuse a separate decode task into the
    actor stage instead bundled all segments into one actor's input.)
    """

    def __init__(self, model_config: dict[str, Any], detect_config: dict[str, Any], source: dict[str, Any] | None = None):
        cv2.setNumThreads(1)
        self.config = DetectTrackConfig(**detect_config)
        self.detector = load_detector(ModelConfig(**model_config))
        self.source = source or {}

    def __call__(self, segments: dict[str, np.ndarray]) -> Iterator[dict[str, np.ndarray]]:
        from pipelines.frame_source import decode_segments

        for frames in decode_segments(segments, frames_per_batch=self.config.batch_size, **self.source):
            yield self.detect_frames(frames)

    def detect_frames(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        images = batch["image"]
        h, w = images.shape[1:3]
        scale = min(1.0, self.config.det_long_side / max(h, w))
        small = [cv2.resize(im, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA) if scale < 1 else im for im in images]
        results = self.detector.detect(small, self.config.det_thresh)
        payloads = []
        for image, dets in zip(images, results):
            dets = dets.copy()
            dets[:, :4] /= scale
            dets[:, 5:] /= scale
            dets[:, [0, 2]] = dets[:, [0, 2]].clip(0, w)
            dets[:, [1, 3]] = dets[:, [1, 3]].clip(0, h)
            dets = dets[(dets[:, 3] - dets[:, 1]) >= self.config.min_face_px]
            quality = np.zeros((len(dets), 2), np.float32)
            chips = []
            for k, det in enumerate(dets):
                chip = align_face(image, det[5:15])
                quality[k] = chip_quality(chip)
                ok, jpeg = cv2.imencode(".jpg", chip, [cv2.IMWRITE_JPEG_QUALITY, CHIP_JPEG_QUALITY])
                chips.append(jpeg.tobytes())
            payloads.append(encode_payload(dets, quality, chips))
        return {
            "segment": batch["segment"],
            "frame_idx": batch["frame_idx"],
            "ts": batch["ts"],
            "cuts": batch["cuts"],
            "segment_sampled_total": batch["segment_sampled_total"],
            "payload": np.array(payloads, dtype=object),
        }
