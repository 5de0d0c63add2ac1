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
    source: Optional[str] = Field(
        None,
        description="on_screen (one face on screen while it spoke, this episode), season (with what the same voice "
        "gathered in the show's other episodes), voice_match (the same voice a reviewer named in another episode) or manual",
    )
    evidence_s: float = Field(0.0, description="Seconds it spoke while that identity was the only face on screen.")
    season_s: float = Field(0.0, description="Seconds the same voice spoke in the show's other episodes while that cast member alone was on screen.")
    candidates: dict[str, float] = Field(
        default_factory=dict, description="Seconds it spoke while each identity was the only face on screen, this episode (the evidence behind the link)."
    )
    speech_s: float
    intervals: list[list[float]]


class VoiceEvidence(_Model):
    """One voice of an episode as the rest of its show sees it: what it sounds like and who was alone
    on screen while it spoke (by cast member), or who a reviewer said it is."""

    voice_id: str
    centroid: list[float]
    speech_s: float
    on_screen_s: dict[str, float] = Field(default_factory=dict, description="Seconds it spoke while each named cast member alone was on screen.")
    reviewed_cast: Optional[str] = Field(None, description="The cast member a reviewer assigned this voice to.")


class EpisodeVoices(_Model):
    """``shows/{show}/voices/{ep_id}.json``: an episode's voices, for linking the same voices in the
    show's other episodes. Facts of that episode only (never links made from the season), so no
    episode's evidence feeds back into itself."""

    show_id: str
    ep_id: str
    run_id: str
    speaker_model: str
    voices: list[VoiceEvidence]
