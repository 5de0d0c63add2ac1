"""Resemblyzer's speaker encoder (Apache-2.0: a 3-layer LSTM over 40 mel bands, 256-d embeddings),
run by onnxruntime: its weights are read from the package's ``pretrained.pt`` without torch.

``pretrained.pt`` is a legacy (pre-zip) torch checkpoint: a few pickles, then each tensor storage's
raw little-endian bytes. We unpickle it with the torch classes mapped to small stand-ins and rebuild
the arrays from those bytes. Install the weights with ``pip install --no-deps resemblyzer`` (its
declared torch dependency is not needed here), or point ``SCREENALYTICS_VOICE_ENCODER`` at a copy.
"""

from __future__ import annotations

import importlib.util
import os
import pickle
import struct
from pathlib import Path
from typing import Any

import numpy as np

from .base import ModelFilesMissing

RATE = 16000
N_FFT = 400
HOP = 160
N_MELS = 40
HIDDEN = 256
_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "LongStorage": np.int64, "IntStorage": np.int32}


def encoder_weights_path() -> Path:
    configured = os.environ.get("SCREENALYTICS_VOICE_ENCODER")
    if configured:
        path = Path(configured)
    else:
        spec = importlib.util.find_spec("resemblyzer")  # located, not imported (it imports torch)
        if spec is None or not spec.submodule_search_locations:
            raise ModelFilesMissing("the speaker encoder is missing: pip install --no-deps resemblyzer (or set SCREENALYTICS_VOICE_ENCODER)")
        path = Path(list(spec.submodule_search_locations)[0]) / "pretrained.pt"
    if not path.is_file():
        raise ModelFilesMissing(f"speaker encoder weights not found at {path}")
    return path


class _Storage:
    def __init__(self, kind: str, key: str, numel: int):
        self.kind, self.key, self.numel = kind, key, numel
        self.data: np.ndarray | None = None


class _Tensor:
    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def array(self) -> np.ndarray:
        assert self.storage.data is not None
        item = self.storage.data.itemsize
        return np.lib.stride_tricks.as_strided(self.storage.data[self.offset :], self.size, [s * item for s in self.stride]).copy()


class _Unpickler(pickle.Unpickler):
    def __init__(self, fh: Any, storages: dict[str, _Storage]):
        super().__init__(fh)
        self.storages = storages

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return lambda storage, offset, size, stride, *rest: _Tensor(storage, offset, size, stride)
        if module == "torch" and name in _DTYPES:
            return name
        if module == "collections" and name == "OrderedDict":
            from collections import OrderedDict

            return OrderedDict
        raise pickle.UnpicklingError(f"unexpected {module}.{name} in the checkpoint")

    def persistent_load(self, pid: Any) -> Any:
        _, kind, key, _location, numel, *_ = pid
        return self.storages.setdefault(key, _Storage(kind, key, numel))


def load_legacy_checkpoint(path: Path) -> dict[str, np.ndarray]:
    storages: dict[str, _Storage] = {}
    with open(path, "rb") as fh:
        for _ in range(3):  # magic number, protocol version, system info
            pickle.load(fh)
        result = _Unpickler(fh, storages).load()
        keys = pickle.load(fh)
        for key in keys:
            (numel,) = struct.unpack("<q", fh.read(8))
            dtype = _DTYPES[storages[key].kind]
            storages[key].data = np.frombuffer(fh.read(numel * np.dtype(dtype).itemsize), dtype=dtype)
    state = result["model_state"] if isinstance(result, dict) and "model_state" in result else result
    return {k: v.array() for k, v in state.items() if isinstance(v, _Tensor)}


def _mel_filters() -> np.ndarray:
    """librosa's default (Slaney) mel filterbank for 16 kHz, n_fft 400, 40 bands."""

    def hz_to_mel(f: np.ndarray) -> np.ndarray:
        f = np.asarray(f, np.float64)
        mel = f / (200.0 / 3)
        log = f >= 1000.0
        return np.where(log, 15.0 + np.log(np.maximum(f, 1e-9) / 1000.0) / (np.log(6.4) / 27.0), mel)

    def mel_to_hz(m: np.ndarray) -> np.ndarray:
        hz = m * (200.0 / 3)
        log = m >= 15.0
        return np.where(log, 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0)), hz)

    fft_hz = np.linspace(0, RATE / 2, N_FFT // 2 + 1)
    mel_hz = mel_to_hz(np.linspace(hz_to_mel(np.array(0.0)), hz_to_mel(np.array(RATE / 2)), N_MELS + 2))
    diff = np.diff(mel_hz)
    ramps = mel_hz[:, None] - fft_hz[None, :]
    weights = np.maximum(0, np.minimum(-ramps[:-2] / diff[:-1, None], ramps[2:] / diff[1:, None]))
    return (weights * (2.0 / (mel_hz[2:] - mel_hz[:-2]))[:, None]).astype(np.float32)


_FB = _mel_filters()
_WINDOW = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)


def mel_frames(wave: np.ndarray) -> np.ndarray:
    """(frames, 40) power mel spectrogram as resemblyzer computes it (librosa defaults, centred)."""
    padded = np.pad(wave.astype(np.float32), N_FFT // 2, mode="reflect") if len(wave) > N_FFT // 2 else np.pad(wave.astype(np.float32), N_FFT // 2)
    n = 1 + (len(padded) - N_FFT) // HOP
    idx = np.arange(N_FFT)[None, :] + HOP * np.arange(n)[:, None]
    power = np.abs(np.fft.rfft(padded[idx] * _WINDOW, N_FFT)) ** 2
    return (power @ _FB.T).astype(np.float32)


def _normalize_volume(wave: np.ndarray, target_dbfs: float = -30.0) -> np.ndarray:
    rms = float(np.sqrt(np.mean(wave.astype(np.float64) ** 2))) if len(wave) else 0.0
    if rms <= 1e-9:
        return wave
    gain = 10 ** ((target_dbfs - 20 * np.log10(rms)) / 20)
    return wave * gain if gain > 1 else wave  # increase only, as resemblyzer does


class VoiceEncoder:
    """``embed(waves)``: one unit 256-d embedding per waveform (16 kHz mono), batched through the LSTM.

    The checkpoint's weights are laid into an ONNX graph (three LSTM layers, the linear layer, ReLU),
    the upper two layers in int8 (:data:`QUANTIZED_LAYERS`), run by onnxruntime on one thread: the
    float graph was 3x faster than the same recurrence stepped in numpy, with the same embeddings."""

    name = "resemblyzer-0.1.4"

    def __init__(self, path: Path | None = None, int8: bool = False):
        """``int8``: the upper LSTM layers in int8 (:data:`QUANTIZED_LAYERS`), for the segmentation method."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # one per Ray task: the audio tasks run side by side
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(encoder_model(path or encoder_weights_path(), int8), sess_options=options, providers=["CPUExecutionProvider"])

    def embed(self, waves: list[np.ndarray]) -> np.ndarray:
        mels = [mel_frames(_normalize_volume(wv)) for wv in waves]
        if not mels:
            return np.zeros((0, HIDDEN), np.float32)
        steps = max(len(m) for m in mels)
        batch = np.zeros((steps, len(mels), N_MELS), np.float32)
        for i, m in enumerate(mels):
            batch[steps - len(m) :, i] = m  # left-padded with zero frames: every sequence ends at the last step
        raw = self._session.run(None, {"mels": batch})[0]
        return (raw / np.maximum(np.linalg.norm(raw, axis=1, keepdims=True), 1e-9)).astype(np.float32)


GRAPH_VERSION = "lstm3-v1"
"""Changes whenever :func:`_encoder_graph` does, so a cached graph is never stale."""

QUANTIZED_LAYERS = ["lstm1", "lstm2"]
"""The LSTM layers whose weights are int8 (:mod:`actors.models.model_cache`) when asked for: the upper
two, which read the layer below's hidden state (within -1..1). The encoder runs in 0.66x the time, with
embeddings at cosine 0.999 to the float graph's. The first layer reads linear mel power, whose range
int8 cannot hold: quantized too, embeddings fell to cosine 0.2-0.5.

Only the segmentation method uses it: its voices came out the same (every DER of the design and
held-out quick exchanges and pyannote's sample unchanged to the fourth digit), its season linking a
hair worse (voice-to-person 0.997 -> 0.996 held out, 0.983 -> 0.979 on the design season). The windows
method's clustering of 1.5 s windows is not that robust: on pyannote's sample its DER went 16.8% -> 48.9%."""


def encoder_model(path: Path, int8: bool = False) -> str:
    """The encoder as an ONNX model file, built from the checkpoint (and quantized, ``int8``) once, then
    read from the model cache (:func:`actors.cache.cache_dir`). Building imports ``onnx``, 0.65 s of
    every new audio worker's start-up otherwise."""
    from .model_cache import cached_model

    def float_graph() -> Any:
        import onnx

        return onnx.load_from_string(_encoder_graph(load_legacy_checkpoint(path)))

    if int8:
        options = {"op_types_to_quantize": ["LSTM"], "nodes_to_quantize": QUANTIZED_LAYERS, "per_channel": True}
        return cached_model(path, "encoder-int8", f"{GRAPH_VERSION}-{QUANTIZED_LAYERS}", float_graph, quantize=options)
    return cached_model(path, "encoder", GRAPH_VERSION, float_graph)


def _encoder_graph(w: dict[str, np.ndarray]) -> bytes:
    """The encoder as an ONNX model: mels (steps, batch, 40) -> ReLU(linear(last hidden state))."""
    from onnx import TensorProto, helper, numpy_helper

    def onnx_gates(m: np.ndarray) -> np.ndarray:  # torch orders the gates i, f, g, o; ONNX i, o, f, g
        i, f, g, o = np.split(m, 4, axis=0)
        return np.concatenate([i, o, f, g], axis=0).astype(np.float32)

    inits = [numpy_helper.from_array(np.array([0], np.int64), "axis0"), numpy_helper.from_array(np.array([1], np.int64), "axis1")]
    nodes, x = [], "mels"
    for k in range(3):
        inits += [
            numpy_helper.from_array(onnx_gates(w[f"lstm.weight_ih_l{k}"])[None], f"W{k}"),
            numpy_helper.from_array(onnx_gates(w[f"lstm.weight_hh_l{k}"])[None], f"R{k}"),
            numpy_helper.from_array(np.concatenate([onnx_gates(w[f"lstm.bias_ih_l{k}"]), onnx_gates(w[f"lstm.bias_hh_l{k}"])])[None], f"B{k}"),
        ]
        nodes += [
            helper.make_node("LSTM", [x, f"W{k}", f"R{k}", f"B{k}"], [f"Y{k}", f"H{k}"], name=f"lstm{k}", hidden_size=HIDDEN),
            helper.make_node("Squeeze", [f"Y{k}", "axis1"], [f"X{k}"]),  # (steps, 1 direction, batch, H) -> (steps, batch, H)
        ]
        x = f"X{k}"
    inits += [numpy_helper.from_array(w["linear.weight"].T.astype(np.float32).copy(), "LW"), numpy_helper.from_array(w["linear.bias"].astype(np.float32), "LB")]
    nodes += [
        helper.make_node("Squeeze", ["H2", "axis0"], ["last"]),
        helper.make_node("MatMul", ["last", "LW"], ["projected"]),
        helper.make_node("Add", ["projected", "LB"], ["biased"]),
        helper.make_node("Relu", ["biased"], ["embedding"]),
    ]
    graph = helper.make_graph(
        nodes,
        "resemblyzer_encoder",
        [helper.make_tensor_value_info("mels", TensorProto.FLOAT, ["steps", "batch", N_MELS])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", HIDDEN])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model.SerializeToString()
