"""The corrections log (``corrections.json``): one model per operation, ``op`` telling them apart.

Every entry names tracks and identities by anchors (what the reviewer saw: a track's span and box,
an identity's tracks and centroid), so it can be re-attached after any stage re-runs
(:mod:`pipelines.anchors`, :mod:`pipelines.corrections`). Entries written before the log had one model
per operation carried every field; reading ignores the ones an operation does not use.
"""

from __future__ import annotations

from typing import Annotated, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from .base import utc_now


class TrackAnchor(BaseModel):
    model_config = ConfigDict(extra="forbid")
    track_id: int
    first_frame_idx: int
    last_frame_idx: int
    bbox: list[float]


class IdentityAnchor(BaseModel):
    model_config = ConfigDict(extra="forbid")
    identity_id: str
    tracks: list[TrackAnchor]
    centroid: Optional[list[float]] = None


class _Entry(BaseModel):
    model_config = ConfigDict(extra="ignore")
    seq: int
    group: Optional[str] = Field(None, description="corrections made in one step (a bulk action) share it: one undo takes them all back")
    created_at: str = Field(default_factory=utc_now)


class AssignCluster(_Entry):
    """Name an identity as a cast member (null: take its name away)."""

    op: Literal["assign_cluster"] = "assign_cluster"
    identity: IdentityAnchor
    cast_id: Optional[str] = None


class AssignTrack(_Entry):
    """Name one track, whatever identity holds it."""

    op: Literal["assign_track"] = "assign_track"
    track: TrackAnchor
    cast_id: Optional[str] = None


class ExcludeFace(_Entry):
    """Leave one detected face out of screen time (or put it back)."""

    op: Literal["exclude_face"] = "exclude_face"
    track: TrackAnchor
    frame_idx: int
    exclude: bool = True


class MoveTrack(_Entry):
    """Move a track to another identity."""

    op: Literal["move_track"] = "move_track"
    track: TrackAnchor
    identity: IdentityAnchor


class Merge(_Entry):
    """``other`` joins ``identity``."""

    op: Literal["merge"] = "merge"
    identity: IdentityAnchor
    other: IdentityAnchor


class Split(_Entry):
    """``tracks`` become an identity of their own."""

    op: Literal["split"] = "split"
    tracks: list[TrackAnchor]


class Reject(_Entry):
    """A reviewer says an identity is not this cast member (``active`` false takes that back)."""

    op: Literal["reject"] = "reject"
    identity: IdentityAnchor
    cast_id: str
    active: bool = True


class Mark(_Entry):
    """What an identity is: a guest (with a name), not a face, or a face after all (restores junk or an
    extra); null clears the mark."""

    op: Literal["mark"] = "mark"
    identity: IdentityAnchor
    kind: Optional[Literal["guest", "not_face", "face"]] = None
    label: Optional[str] = None


class Undo(_Entry):
    """Takes entry ``target_seq`` back (the log itself is never rewritten)."""

    op: Literal["undo"] = "undo"
    target_seq: int


class AssignVoice(_Entry):
    """Name a voice, anchored by when it spoke (null: take its name away)."""

    op: Literal["assign_voice"] = "assign_voice"
    spans: list[list[float]]
    cast_id: Optional[str] = None


Correction = Annotated[
    Union[AssignCluster, AssignTrack, ExcludeFace, MoveTrack, Merge, Split, Reject, Mark, Undo, AssignVoice],
    Field(discriminator="op"),
]
CorrectionOp = Literal["assign_cluster", "assign_track", "exclude_face", "move_track", "merge", "split", "reject", "mark", "undo", "assign_voice"]
CORRECTION = TypeAdapter(Correction)
"""Validates one entry from a dict (``CORRECTION.validate_python({"op": "merge", ...})``)."""


class CorrectionsLog(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ep_id: str
    run_id: str
    corrections: list[Correction] = Field(default_factory=list)


class Unattached(BaseModel):
    """A correction the current artifacts no longer hold: reported, never applied elsewhere."""

    seq: int
    op: str
    reason: str


class LabelConflict(BaseModel):
    """Cast labels that the current clustering no longer keeps apart (or together).

    ``merged``: clusters a reviewer labelled as different people (or one labelled a cast member, another
    marked guest / not a face: ``mark``) are now one identity. Every label is kept: each applies to the
    tracks it was given with, so nobody's seconds vanish; a mark stays on the identity's other tracks.
    ``split``: a labelled cluster is now spread over several identities; the label stays with the one
    holding most of its tracks, and ``identities`` lists the others, which need a look.
    """

    kind: Literal["merged", "split"]
    identity_id: str
    cast_ids: list[str]
    seqs: list[int]
    identities: list[str] = Field(default_factory=list)
    mark: Optional[Literal["guest", "not_face"]] = Field(None, description="merged: the mark a reviewer gave the other tracks")
    reason: str
