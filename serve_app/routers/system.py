"""Health and what the deployment can do."""

from __future__ import annotations

from fastapi import APIRouter

from ..context import Ctx
from ..models import AudioPrerequisites
from ..responses import HealthResponse

router = APIRouter(tags=["system"])


@router.get("/health", response_model=HealthResponse)
def health(ctx: Ctx) -> dict:
    return {"status": "ok", "data_dir": ctx.settings.data_uri, "auth": ctx.settings.api_token is not None}


@router.get("/audio/prerequisites", response_model=AudioPrerequisites)
def audio_prerequisites() -> AudioPrerequisites:
    from actors.models.speech import SPEECH_INSTALL, missing_speech_models

    missing = missing_speech_models()
    detail = (
        "The audio stage finds speech and voices and links them to who is on screen: speaking_s, both_s and voice_only_s are reported."
        if not missing
        else f"Runs skip the audio stage (speaking time is not measured). Install the speech models: {SPEECH_INSTALL}."
    )
    return AudioPrerequisites(available=not missing, missing=missing, detail=detail)
