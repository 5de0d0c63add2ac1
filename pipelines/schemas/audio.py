"""What the audio stage writes under the run: ``audio/speech.jsonl`` and ``audio/voices.json``."""

from __future__ import annotations

from typing import Optional

from pydantic import Field

from .base import _Model


class SpeechTurn(_Model):
    start: float
    end: float
    voice_id: str
    confidence: float = Field(description="Share of the windows over this turn that agree on its voice.")


class Voice(_Model):
    voice_id: str
    speech_s: float
    turns: int
    centroid: list[float] = Field(description="Unit speaker embedding of the voice (its windows' mean).")


class VoicesFile(_Model):
    ep_id: str
    run_id: str
    speaker_model: str
    has_audio: bool
    note: Optional[str] = Field(None, description="Why there is no speech to report (no audio stream), if so.")
    speech_s: float
    voices: list[Voice]


class SpeakerLink(_Model):
    """A voice tied to an identity (and so to its cast member), with the evidence."""

    voice_id: str
    identity_id: Optional[str]
    cast_id: Optional[str]
    source: Optional[str] = Field(None, description="on_screen (one face on screen while it spoke) or manual")
    evidence_s: float = Field(0.0, description="Seconds it spoke while that identity was the only face on screen.")
    speech_s: float
    intervals: list[list[float]]
