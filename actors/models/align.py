"""Five-point face alignment to the 112x112 ArcFace template (used by SFace and ArcFace alike),
and the cheap quality measures computed on the aligned crop."""

from __future__ import annotations

import cv2
import numpy as np

ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32,
)
CHIP_SIZE = 112
CHIP_JPEG_QUALITY = 95
"""Chips are stored and embedded as JPEG at this quality, from video and photos alike."""


def align_face(frame: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Similarity-warp ``frame`` so the five ``landmarks`` land on the ArcFace template."""
    src = np.asarray(landmarks, dtype=np.float32).reshape(5, 2)
    matrix, _ = cv2.estimateAffinePartial2D(src, ARCFACE_TEMPLATE, method=cv2.LMEDS)
    if matrix is None:  # degenerate landmarks: fall back to a plain similarity from the eye line
        matrix = cv2.getAffineTransform(src[[0, 1, 3]], ARCFACE_TEMPLATE[[0, 1, 3]])
    return cv2.warpAffine(frame, matrix, (CHIP_SIZE, CHIP_SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def chip_quality(chip: np.ndarray) -> tuple[float, float]:
    """(blur, contrast): Laplacian variance and gray standard deviation of the central face region."""
    gray = cv2.cvtColor(chip, cv2.COLOR_BGR2GRAY)
    center = gray[24:104, 24:88]
    blur = float(cv2.Laplacian(center, cv2.CV_64F).var())
    contrast = float(center.std())
    return blur, contrast
