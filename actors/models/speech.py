"""Whether the speech models can run here: the audio stage needs all of them, and without them a run
skips it (speaking time not measured) instead of failing."""

from __future__ import annotations

import importlib.util

from .base import ModelFilesMissing

SPEECH_INSTALL = 'pip install --no-deps "silero-vad==6.2.3" "Resemblyzer==0.1.4" (their torch dependency is not needed), with onnxruntime'


def missing_speech_models() -> list[str]:
    """What is missing for the audio stage, one phrase each (empty: it can run)."""
    from .vad import vad_model_path
    from .voice_encoder import encoder_weights_path

    missing = []
    for what, find in (("voice activity model (silero-vad)", vad_model_path), ("speaker encoder (resemblyzer)", encoder_weights_path)):
        try:
            find()
        except ModelFilesMissing:
            missing.append(what)
    if importlib.util.find_spec("onnxruntime") is None:
        missing.append("onnxruntime (pip install 'screenalytics[cpu]', or [gpu])")
    return missing
