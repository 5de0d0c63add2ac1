"""The face-model interface every backend implements.

A detector maps BGR frames to rows ``[x1, y1, x2, y2, score, lx0, ly0, ..., lx4, ly4]`` (five landmarks:
the subject's right eye, left eye, nose tip, right and left mouth corners) in the input frame's pixels.
An embedder maps aligned 112x112 BGR crops (ArcFace template, see :mod:`actors.models.align`) to
L2-normalised float32 vectors.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

DET_COLUMNS = 15


class ModelFilesMissing(FileNotFoundError):
    """A configured model file is absent; the message names every missing file."""


class FaceDetector(ABC):
    name: str
    device: str = "cpu"

    @abstractmethod
    def detect(self, frames: list[np.ndarray], score_threshold: float) -> list[np.ndarray]:
        """One ``(n, 15)`` float32 array per frame."""


class FaceEmbedder(ABC):
    name: str
    dim: int
    device: str = "cpu"
    recommended_threshold: float
    """Cosine similarity above which two track prototypes are usually the same person."""

    @abstractmethod
    def embed(self, chips: np.ndarray) -> np.ndarray:
        """``(n, 112, 112, 3)`` uint8 BGR -> ``(n, dim)`` float32, unit length."""


def l2_normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)
