"""Faces in a still photo, found, aligned and embedded exactly as the pipeline does with video frames
(same detector, same alignment, same JPEG chip round trip, same embedder), so a photo's embedding is
comparable with an episode's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from .align import CHIP_JPEG_QUALITY, align_face
from .base import FaceDetector, FaceEmbedder
from .config import ModelConfig
from .registry import load_detector, load_embedder

MAX_PHOTO_SIDE = 1600
"""Photos are shrunk to this long side before detection: faces in portraits stay far above the
detector's smallest size, and a 6000 px camera file does not cost seconds."""


@dataclass
class PhotoModels:
    detector: FaceDetector
    embedder: FaceEmbedder

    @classmethod
    def load(cls, model_config: dict[str, Any]) -> PhotoModels:
        config = ModelConfig(**model_config)
        return cls(load_detector(config), load_embedder(config))

    def faces(self, image: np.ndarray, score_threshold: float) -> list[dict[str, Any]]:
        """Every face: ``box`` (source pixels), ``score``, ``chip_jpeg``, ``embedding``, ``embedding_model``."""
        h, w = image.shape[:2]
        scale = min(1.0, MAX_PHOTO_SIDE / max(h, w))
        small = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA) if scale < 1 else image
        dets = self.detector.detect([small], score_threshold)[0].copy()
        if not len(dets):
            return []
        dets[:, :4] /= scale
        dets[:, 5:15] /= scale
        jpegs = []
        for det in dets:
            ok, jpeg = cv2.imencode(".jpg", align_face(image, det[5:15]), [cv2.IMWRITE_JPEG_QUALITY, CHIP_JPEG_QUALITY])
            jpegs.append(jpeg.tobytes())
        chips = np.stack([np.asarray(cv2.imdecode(np.frombuffer(j, np.uint8), cv2.IMREAD_COLOR)) for j in jpegs])
        vectors = self.embedder.embed(chips)
        return [
            {
                "box": [round(float(v), 1) for v in det[:4]],
                "score": round(float(det[4]), 4),
                "chip_jpeg": jpeg,
                "embedding": [round(float(v), 6) for v in vec],
                "embedding_model": self.embedder.name,
            }
            for det, jpeg, vec in zip(dets, jpegs, vectors)
        ]
