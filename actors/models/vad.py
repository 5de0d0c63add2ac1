"""Voice activity with Silero VAD's ONNX model (MIT), run by onnxruntime: no torch.

The model ships in the ``silero-vad`` package (installed without its torch dependency: ``pip install
--no-deps silero-vad``); ``SCREENALYTICS_VAD_MODEL`` points at another copy. Input is 16 kHz mono in
512-sample chunks (32 ms) with 64 samples of context; the model is recurrent, so chunks run in order.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np

from .base import ModelFilesMissing

RATE = 16000
CHUNK = 512
CONTEXT = 64
CHUNK_S = CHUNK / RATE


def vad_model_path() -> Path:
    configured = os.environ.get("SCREENALYTICS_VAD_MODEL")
    if configured:
        path = Path(configured)
    else:
        spec = importlib.util.find_spec("silero_vad")  # finds the package without importing it (it imports torch)
        if spec is None or not spec.submodule_search_locations:
            raise ModelFilesMissing("the voice-activity model is missing: pip install --no-deps silero-vad (or set SCREENALYTICS_VAD_MODEL)")
        path = Path(list(spec.submodule_search_locations)[0]) / "data" / "silero_vad.onnx"
    if not path.is_file():
        raise ModelFilesMissing(f"voice-activity model not found at {path}")
    return path


class SileroVad:
    def __init__(self, path: Path | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path or vad_model_path()), options, providers=["CPUExecutionProvider"])

    def probabilities(self, wave: np.ndarray) -> np.ndarray:
        """Speech probability of each 32 ms chunk of 16 kHz mono ``wave``."""
        n = len(wave) // CHUNK
        state = np.zeros((2, 1, 128), np.float32)
        context = np.zeros((1, CONTEXT), np.float32)
        sr = np.array(RATE, np.int64)
        out = np.empty(n, np.float32)
        for k in range(n):
            x = np.concatenate([context, wave[None, k * CHUNK : (k + 1) * CHUNK].astype(np.float32)], axis=1)
            prob, state = self.session.run(None, {"input": x, "state": state, "sr": sr})
            out[k] = float(prob[0, 0])
            context = x[:, -CONTEXT:]
        return out


def speech_spans(probs: np.ndarray, on: float, off: float, min_silence_s: float, min_burst_s: float = 0.25) -> list[tuple[float, float]]:
    """Speech intervals (seconds) from chunk probabilities, with hysteresis: speech starts above ``on``,
    ends after ``min_silence_s`` below ``off``; bursts shorter than ``min_burst_s`` are dropped."""
    spans: list[tuple[float, float]] = []
    start: float | None = None
    last_voiced = 0.0
    for k, p in enumerate(probs):
        t = k * CHUNK_S
        if p >= on:
            if start is None:
                start = t
            last_voiced = t + CHUNK_S
        elif start is not None and p < off and t - last_voiced >= min_silence_s:
            if last_voiced - start >= min_burst_s:
                spans.append((start, last_voiced))
            start = None
    if start is not None and last_voiced - start >= min_burst_s:
        spans.append((start, last_voiced))
    return spans
