"""Models derived from a model file (an ONNX graph built from a checkpoint, an int8 copy), made once and
kept in the model cache (:func:`actors.cache.cache_dir`).

int8 copies are onnxruntime's dynamic quantization: the chosen nodes' weights are stored in int8 and
their inputs quantized on the fly, per call. A node's input range is measured over the whole batch, so
a sequence's output moves a little with the batch it is run in (the speaker encoder's embeddings: cosine
0.9997). Inputs of a wide dynamic range quantize badly, so callers name the nodes that suit it.

``onnx`` and the quantizer (0.65 s to import) are only imported when the cache lacks the model: a new
audio worker whose models are cached starts in a tenth of that.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .onnx_fixups import cached_model_path


def cached_model(source: Path, kind: str, version: str, build: Callable[[], Any], quantize: dict[str, Any] | None = None) -> str:
    """The path of the model ``build()`` returns (a path or an ``onnx.ModelProto``), quantized to int8
    with ``quantize`` (onnxruntime's ``quantize_dynamic`` arguments) when given, cached under a key of
    ``source``'s bytes, ``kind`` and ``version``: change ``version`` whenever ``build`` or ``quantize``
    do. Where the cache cannot be written, it is made in a temporary file each time: slower, never a failure."""
    cached = cached_model_path(source, source.read_bytes(), kind, version)
    if cached.is_file():
        return str(cached)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(f"{cached.name}.{os.getpid()}.tmp")  # per process: audio tasks start together
        _make(build(), tmp, quantize)
        tmp.replace(cached)
        return str(cached)
    except OSError:  # a read-only cache
        target = Path(tempfile.mkdtemp()) / cached.name
        _make(build(), target, quantize)
        return str(target)


def _make(model: Any, target: Path, quantize: dict[str, Any] | None) -> None:
    if quantize is None:
        import onnx

        onnx.save(onnx.load(str(model)) if isinstance(model, (str, Path)) else model, str(target))
        return
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # its advice to pre-process the model first, once per model
    try:
        quantize_dynamic(model, target, weight_type=QuantType.QInt8, **quantize)
    finally:
        root.setLevel(level)
