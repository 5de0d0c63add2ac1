"""Health and what the deployment can do."""

from __future__ import annotations

from fastapi import APIRouter

from ..context import Ctx
from ..models import AudioPrerequisites

router = APIRouter(tags=["system"])


@router.get("/health")
def health(ctx: Ctx) -> dict:
    return {"status": "ok", "data_dir": ctx.settings.data_uri, "auth": ctx.settings.api_token is not None}


@router.get("/audio/prerequisites", response_model=AudioPrerequisites)
def audio_prerequisites() -> AudioPrerequisites:
    from actors.models.base import ModelFilesMissing
    from actors.models.vad import vad_model_path
    from actors.models.voice_encoder import encoder_weights_path

    missing = []
    for what, find in (("voice activity model (silero-vad)", vad_model_path), ("speaker encoder (resemblyzer)", encoder_weights_path)):
        try:
            find()
        except ModelFilesMissing:
            missing.append(what)
    detail = (
        "The audio stage finds speech and voices and links them to who is on screen: speaking_s, both_s and voice_only_s are reported."
        if not missing
        else "Install the speech models with `pip install --no-deps silero-vad resemblyzer` (their torch dependency is not needed)."
    )
    return AudioPrerequisites(available=not missing, missing=missing, detail=detail)
