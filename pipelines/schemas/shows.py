"""Shows, cast members, the facebank, naming and calibration (stored under ``shows/{show}/`` and in runs)."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field

from .base import _Model, utc_now


class ShowRecord(_Model):
    show_id: str
    name: str
    created_at: str = Field(default_factory=utc_now)


class CastMember(_Model):
    cast_id: str
    show_id: str
    name: str
    created_at: str = Field(default_factory=utc_now)
    updated_at: str = Field(default_factory=utc_now)


BankKind = Literal["cast", "guest", "not_face"]


class FacebankEntry(_Model):
    """One reference face. ``kind`` cast: a cast member's face; guest / not_face: the show's "not cast"
    bank (``label`` names the guest when a reviewer did). Embeddings are compared only with embeddings
    of the same ``embedding_model``."""

    entry_id: str
    kind: BankKind
    cast_id: Optional[str] = None
    label: Optional[str] = None
    source: Literal["photo", "cluster"]
    photo: Optional[str] = Field(None, description="The photo's file name (source photo).")
    ep_id: Optional[str] = None
    run_id: Optional[str] = None
    identity_id: Optional[str] = None
    face_id: Optional[str] = None
    embedding_model: str
    embedding: list[float]
    chip_key: Optional[str] = Field(None, description="The aligned 112x112 chip, to re-embed with another model.")
    created_at: str = Field(default_factory=utc_now)


class Suggestion(_Model):
    cast_id: str
    score: float
    rejected: bool = False


class IdentityNaming(_Model):
    identity_id: str
    cast_id: Optional[str] = Field(None, description="The automatic name, when every rule allowed one.")
    confidence: Optional[float] = None
    suggestions: list[Suggestion] = Field(default_factory=list, description="Best 3 cast members, best first.")
    not_cast_score: Optional[float] = Field(None, description="Best match in the show's not-cast bank.")
    guest_label: Optional[str] = Field(None, description="Recognised as this guest (or not-a-face) from the not-cast bank.")
    guest_kind: Optional[Literal["guest", "not_face"]] = None
    reason: str = Field(description="Why it was (not) named: auto, below_threshold, margin, not_cast, one_to_one, empty_bank.")


class NamingFile(_Model):
    ep_id: str
    run_id: str
    show_id: str
    embedding_model: str
    auto_threshold: float
    margin: float
    bank_faces: int
    identities: list[IdentityNaming]


class Calibration(_Model):
    show_id: str
    embedding_model: str
    auto_threshold: float
    precision: float
    coverage: float
    episodes: list[str]
    table: list[dict[str, float]]
    created_at: str = Field(default_factory=utc_now)
