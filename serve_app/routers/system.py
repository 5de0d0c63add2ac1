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
    return AudioPrerequisites(
        available=False,
        missing=["speaker diarization model", "speech recognition model", "audio pipeline"],
        detail="Screenalytics measures visual screen time only; speaking_s and both_s are reported as null.",
    )
