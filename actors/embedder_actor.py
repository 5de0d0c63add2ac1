"""The embedder actor: a Ray Data ``map_batches`` class UDF that turns JPEG face chips into
unit-length embeddings with the configured model, loaded once per actor."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from actors.models.registry import load_embedder
from pipelines.config import ModelConfig


class FaceEmbedderWorker:
    def __init__(self, model_config: dict[str, Any]):
        cv2.setNumThreads(1)
        self.embedder = load_embedder(ModelConfig(**model_config))

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        chips = np.stack([cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR) for b in batch["chip_jpeg"]])
        return {"face_row": batch["face_row"], "embedding": self.embedder.embed(chips)}
