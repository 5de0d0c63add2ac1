"""InsightFace model packs (e.g. buffalo_l: SCRFD ``det_10g.onnx`` + ArcFace ``w600k_r50.onnx``) run on
onnxruntime, with the CUDA provider when present.

InsightFace downloads its packs at run time, which air-gapped farms (and this build machine) cannot
do, so the pack must be unpacked into a directory the user configures (``models.insightface_dir``).
Nothing falls back silently: a missing directory or file raises :class:`ModelFilesMissing` naming it.
"""

from __future__ import annotations

import logging
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

DETECTOR_FILES = ("det_10g.onnx", "det_2.5g.onnx", "det_500m.onnx", "scrfd_10g_bnkps.onnx", "scrfd_2.5g_bnkps.onnx")
EMBEDDER_FILES = ("w600k_r50.onnx", "w600k_mbf.onnx", "glintr100.onnx", "arcface_r100.onnx")

log = logging.getLogger(__name__)


def _pick(model_dir: Path, names: tuple[str, ...], what: str) -> Path:
    for name in names:
        if (model_dir / name).is_file():
            return model_dir / name
    raise ModelFilesMissing(
        f"no {what} in InsightFace model directory {model_dir}: expected one of {', '.join(names)} "
        "(unpack a model pack such as buffalo_l there; it is not downloaded automatically)"
    )


def find_pack(model_dir: str | Path | None) -> tuple[Path, Path]:
    if not model_dir:
        raise ModelFilesMissing(
            "models.backend=insightface needs models.insightface_dir (or SCREENALYTICS_MODELS__INSIGHTFACE_DIR) pointing at an unpacked InsightFace model pack"
        )
    path = Path(model_dir)
    if not path.is_dir():
        raise ModelFilesMissing(f"InsightFace model directory {path} does not exist")
    return _pick(path, DETECTOR_FILES, "detector"), _pick(path, EMBEDDER_FILES, "recognition model")


def _preload_cuda_libraries(ort) -> None:
    """Let onnxruntime-gpu find CUDA and cuDNN installed as pip packages (nvidia-*), once per process.
    Without it the CUDA provider loads only when those libraries are on the loader's path."""
    if getattr(_preload_cuda_libraries, "done", False) or not hasattr(ort, "preload_dlls"):
        return
    _preload_cuda_libraries.done = True  # type: ignore[attr-defined]
    try:
        ort.preload_dlls(directory="")
    except Exception as exc:  # noqa: BLE001 - a missing library is reported by the session that needs it
        log.warning("onnxruntime could not preload CUDA libraries: %s", exc)


def ort_session(path: Path, device: str):
    try:
        import onnxruntime as ort
    except ImportError:
        raise ModelFilesMissing(
            "onnxruntime is not installed: pip install 'screenalytics[cpu]' (or [gpu] on a GPU node), or set models.runtime=opencv"
        ) from None

    available = ort.get_available_providers()
    providers = ["CPUExecutionProvider"]
    if device in ("auto", "cuda") and "CUDAExecutionProvider" in available:
        _preload_cuda_libraries(ort)
        providers.insert(0, "CUDAExecutionProvider")
    elif device == "cuda":
        raise RuntimeError(f"models.device=cuda but onnxruntime offers only {available}")
    options = ort.SessionOptions()
    # One thread, not spinning: every actor holds a session, one per CPU, so a pool per session (the
    # default: one thread per core, spinning between runs) would oversubscribe the node many times.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    if providers[0] == "CUDAExecutionProvider":
        # cuDNN's exhaustive algorithm search runs again for every new input shape (each batch size,
        # in every actor); its heuristic choice is within noise for these small networks.
        providers[0] = ("CUDAExecutionProvider", {"cudnn_conv_algo_search": "HEURISTIC"})  # type: ignore[call-overload]
    from .onnx_fixups import branchless_prelu

    cpu_only = len(providers) == 1
    session = ort.InferenceSession(str(branchless_prelu(path) if cpu_only else path), sess_options=options, providers=providers)
    on_cuda = session.get_providers()[0] == "CUDAExecutionProvider"
    if device == "cuda" and not on_cuda:  # onnxruntime itself falls back to the CPU, with only a log line
        raise RuntimeError(
            "models.device=cuda but onnxruntime's CUDA provider did not load (CUDA 12/13 and cuDNN 9 libraries, "
            "a driver and a GPU are needed; its log above names what is missing); use models.device=auto or cpu"
        )
    if not on_cuda and not cpu_only:  # auto fell back to the CPU: the CPU's graph, where it differs
        cpu_path = branchless_prelu(path)
        if cpu_path != path:
            session = ort.InferenceSession(str(cpu_path), sess_options=options, providers=["CPUExecutionProvider"])
    return session, ("cuda" if on_cuda else "cpu")


class ScrfdDetector(FaceDetector):
    """SCRFD with 5 key points: 3 strides (8, 16, 32), 2 anchors per location, letterboxed square input."""

    def __init__(self, path: Path, device: str = "auto", input_size: int = 640, nms_iou: float = 0.4):
        self.name = f"scrfd:{path.name}"
        self._session, self.device = ort_session(path, device)
        self._input = self._session.get_inputs()[0].name
        self._size = input_size
        self._nms_iou = nms_iou
        self._strides = (8, 16, 32)
        outputs = self._session.get_outputs()
        if len(outputs) != 9:
            raise ValueError(f"{path.name}: expected a SCRFD model with key points (9 outputs), got {len(outputs)}")
        self._centers: dict[int, np.ndarray] = {}

    def _anchor_centers(self, stride: int) -> np.ndarray:
        if stride not in self._centers:
            n = self._size // stride
            ys, xs = np.mgrid[:n, :n]
            centers = (np.stack([xs, ys], axis=-1).reshape(-1, 2) * stride).astype(np.float32)
            self._centers[stride] = np.repeat(centers, 2, axis=0)
        return self._centers[stride]

    def detect(self, frames: list[np.ndarray], score_threshold: float) -> list[np.ndarray]:
        return [self._detect_one(frame, score_threshold) for frame in frames]

    def _detect_one(self, frame: np.ndarray, score_threshold: float) -> np.ndarray:
        h, w = frame.shape[:2]
        scale = self._size / max(h, w)
        resized = cv2.resize(frame, (max(1, round(w * scale)), max(1, round(h * scale))))
        canvas = np.zeros((self._size, self._size, 3), np.uint8)
        canvas[: resized.shape[0], : resized.shape[1]] = resized
        blob = cv2.dnn.blobFromImage(canvas, 1.0 / 128.0, (self._size, self._size), (127.5, 127.5, 127.5), swapRB=True)
        outs = self._session.run(None, {self._input: blob})
        rows = []
        for i, stride in enumerate(self._strides):
            scores = outs[i].reshape(-1)
            keep = np.where(scores >= score_threshold)[0]
            if keep.size == 0:
                continue
            centers = self._anchor_centers(stride)[keep]
            dist = outs[i + 3].reshape(-1, 4)[keep] * stride
            kps = outs[i + 6].reshape(-1, 10)[keep] * stride
            boxes = np.concatenate([centers - dist[:, :2], centers + dist[:, 2:]], axis=1)
            points = kps.reshape(-1, 5, 2) + centers[:, None, :]
            rows.append(np.concatenate([boxes, scores[keep, None], points.reshape(-1, 10)], axis=1))
        if not rows:
            return np.zeros((0, DET_COLUMNS), np.float32)
        dets = np.concatenate(rows).astype(np.float32)
        dets[:, [0, 1, 2, 3]] /= scale
        dets[:, 5:] /= scale
        xywh = np.concatenate([dets[:, :2], dets[:, 2:4] - dets[:, :2]], axis=1)
        keep = np.asarray(cv2.dnn.NMSBoxes(xywh.tolist(), dets[:, 4].tolist(), score_threshold, self._nms_iou), np.int64)
        return dets[np.asarray(keep, dtype=int).reshape(-1)]


class ArcFaceEmbedder(FaceEmbedder):
    recommended_threshold = 0.35

    def __init__(self, path: Path, device: str = "auto"):
        self.name = f"arcface:{path.name}"
        self._session, self.device = ort_session(path, device)
        self._input = self._session.get_inputs()[0].name
        self.dim = int(self._session.get_outputs()[0].shape[-1])

    def embed(self, chips: np.ndarray) -> np.ndarray:
        if len(chips) == 0:
            return np.zeros((0, self.dim), np.float32)
        blob = cv2.dnn.blobFromImages(list(chips), 1.0 / 127.5, (112, 112), (127.5, 127.5, 127.5), swapRB=True)
        return l2_normalize(self._session.run(None, {self._input: blob})[0])
