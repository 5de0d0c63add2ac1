"""Human corrections, kept apart from the cluster output and re-attached after any stage re-runs.

Corrections are an append-only log (``corrections.json``). Each entry refers to tracks and identities
through anchors, not bare ids: a track anchor keeps the track's frame span and a box; an identity
anchor keeps its member tracks' anchors and its centroid. Replaying the log against the *current*
artifacts re-attaches each entry:

- a track: the current track with the same id and span, else the one overlapping it most in time
  (and place), if it covers at least half of the anchor;
- an identity: the current identity holding most of the anchor's tracks, else the identity whose
  centroid is most similar (cosine >= ``CENTROID_MATCH``);
- anything that cannot be re-attached is reported, never silently applied elsewhere.

Later entries win over earlier ones. Resolution order for screen time is unchanged: face exclusion >
track override > cluster assignment.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal, Optional

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from .artifacts import read_model
from .ids import face_id
from .layout import RunLayout
from .schemas import (
    Assignments,
    ClusterCentroidsFile,
    IdentitiesFile,
    Identity,
    IdentityNaming,
    TrackRow,
    utc_now,
)
from .storage import Storage

CORRECTIONS_FILE = "corrections.json"
CENTROID_MATCH = 0.5
TRACK_OVERLAP_MIN = 0.5


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


class Correction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seq: int
    op: Literal["assign_cluster", "assign_track", "exclude_face", "merge", "move_track", "split", "reject", "mark", "undo", "assign_voice"]
    cast_id: Optional[str] = None
    identity: Optional[IdentityAnchor] = None
    other: Optional[IdentityAnchor] = Field(None, description="merge: the identity merged into `identity`")
    track: Optional[TrackAnchor] = None
    tracks: list[TrackAnchor] = Field(default_factory=list, description="split: tracks that become their own identity")
    frame_idx: Optional[int] = None
    exclude: bool = True
    kind: Optional[Literal["guest", "not_face", "face"]] = Field(
        None, description="mark: what the identity is (face restores junk or an extra; null clears the mark)"
    )
    label: Optional[str] = Field(None, description="mark: a guest's name")
    active: bool = Field(True, description="reject: false takes the rejection back")
    target_seq: Optional[int] = Field(None, description="undo: the entry taken back")
    spans: list[list[float]] = Field(default_factory=list, description="assign_voice: when the voice spoke (its anchor)")
    created_at: str = Field(default_factory=utc_now)


class CorrectionsLog(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ep_id: str
    run_id: str
    corrections: list[Correction] = Field(default_factory=list)


class Unattached(BaseModel):
    seq: int
    op: str
    reason: str


class LabelConflict(BaseModel):
    """Cast labels that the current clustering no longer keeps apart (or together).

    ``merged``: clusters a reviewer labelled as different people are now one identity. Both labels are
    kept: each applies to the tracks it was given with, so nobody's seconds vanish.
    ``split``: a labelled cluster is now spread over several identities; the label stays with the one
    holding most of its tracks, and ``identities`` lists the others, which need a look.
    """

    kind: Literal["merged", "split"]
    identity_id: str
    cast_ids: list[str]
    seqs: list[int]
    identities: list[str] = Field(default_factory=list)
    reason: str


@dataclass
class Resolved:
    identities: IdentitiesFile
    assignments: Assignments
    unattached: list[Unattached] = field(default_factory=list)
    conflicts: list[LabelConflict] = field(default_factory=list)
    naming: dict[str, IdentityNaming] = field(default_factory=dict)  # the naming stage's view, by identity
    voice_labels: list[tuple[list[list[float]], Optional[str]]] = field(default_factory=list)  # (voice anchor, cast id), in order


@dataclass
class _Label:
    seq: int
    cast_id: Optional[str]
    tracks: set[int]


def track_anchor(track: TrackRow) -> TrackAnchor:
    mid = track.bboxes_sampled[len(track.bboxes_sampled) // 2][:4] if track.bboxes_sampled else [0.0, 0.0, 0.0, 0.0]
    return TrackAnchor(track_id=track.track_id, first_frame_idx=track.first_frame_idx, last_frame_idx=track.last_frame_idx, bbox=mid)


def identity_anchor(identity: Identity, tracks: dict[int, TrackRow], centroids: dict[str, list[float]]) -> IdentityAnchor:
    return IdentityAnchor(
        identity_id=identity.identity_id,
        tracks=[track_anchor(tracks[t]) for t in identity.track_ids if t in tracks],
        centroid=centroids.get(identity.identity_id),
    )


def _box_iou(a: list[float], b: list[float]) -> float:
    x1, y1, x2, y2 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class _Resolver:
    def __init__(self, identities: IdentitiesFile, tracks: list[TrackRow], centroids: ClusterCentroidsFile | None):
        self.tracks = {t.track_id: t for t in tracks}
        self.members: dict[str, list[int]] = {i.identity_id: list(i.track_ids) for i in identities.identities}
        self.base = {i.identity_id: i for i in identities.identities}
        self.centroids = {c.identity_id: np.asarray(c.centroid, np.float32) for c in (centroids.centroids if centroids else [])}

    def identity_of(self, track_id: int) -> Optional[str]:
        for ident, members in self.members.items():
            if track_id in members:
                return ident
        return None

    def track(self, anchor: TrackAnchor) -> Optional[int]:
        same = self.tracks.get(anchor.track_id)
        if same and same.first_frame_idx == anchor.first_frame_idx and same.last_frame_idx == anchor.last_frame_idx:
            return anchor.track_id
        span = anchor.last_frame_idx - anchor.first_frame_idx + 1
        best, best_score = None, 0.0
        for t in self.tracks.values():
            overlap = min(t.last_frame_idx, anchor.last_frame_idx) - max(t.first_frame_idx, anchor.first_frame_idx) + 1
            if overlap <= 0:
                continue
            near = any(_box_iou(b[:4], anchor.bbox) > 0.1 for b in t.bboxes_sampled) if anchor.bbox[2] > 0 else True
            score = overlap / span if near else 0.0
            if score > best_score:
                best, best_score = t.track_id, score
        return best if best_score >= TRACK_OVERLAP_MIN else None

    def anchor_tracks(self, anchor: IdentityAnchor) -> set[int]:
        return {t for a in anchor.tracks if (t := self.track(a)) is not None}

    def identity(self, anchor: IdentityAnchor) -> Optional[str]:
        votes = Counter(ident for a in anchor.tracks if (t := self.track(a)) is not None and (ident := self.identity_of(t)))
        if votes:
            return votes.most_common(1)[0][0]
        if anchor.centroid is not None and self.centroids:
            c = np.asarray(anchor.centroid, np.float32)
            sims = {k: float(v @ c) for k, v in self.centroids.items() if k in self.members}
            if sims:
                best = max(sims, key=sims.__getitem__)
                if sims[best] >= CENTROID_MATCH:
                    return best
        return None


def resolve(log: CorrectionsLog, identities: IdentitiesFile, tracks: list[TrackRow], centroids: ClusterCentroidsFile | None = None) -> Resolved:
    r = _Resolver(identities, tracks, centroids)
    labels: dict[str, list[_Label]] = {}  # identity -> cluster labels given to (parts of) it
    track_cast: dict[int, Optional[str]] = {}
    excluded: dict[str, bool] = {}
    rejected: dict[str, set[str]] = {}
    voice_labels: list[tuple[list[list[float]], Optional[str]]] = []
    marks: dict[str, tuple[Optional[str], Optional[str]]] = {}
    unattached: list[Unattached] = []

    def lost(c: Correction, what: str) -> None:
        unattached.append(Unattached(seq=c.seq, op=c.op, reason=f"{what} no longer matches any current {what.split()[0]}"))

    undone = undone_seqs(log)
    for c in sorted(log.corrections, key=lambda c: c.seq):
        if c.seq in undone or c.op == "undo":
            continue
        if c.op == "assign_cluster":
            ident = r.identity(c.identity) if c.identity else None
            if ident is None or c.identity is None:
                lost(c, f"identity {c.identity.identity_id if c.identity else '?'}")
            else:
                label = _Label(c.seq, c.cast_id, r.anchor_tracks(c.identity))
                if c.cast_id and marks.get(ident, (None, None))[0] in ("guest", "not_face"):
                    marks.pop(ident, None)  # naming it a cast member undoes a guest / not-a-face mark
                # A label on tracks that an earlier label covered replaces it (a reviewer changing their
                # mind); a label on other tracks of the same identity stands beside it (a conflict).
                kept = [old for old in labels.get(ident, []) if not (old.tracks & label.tracks) and label.tracks]
                labels[ident] = kept + [label]
        elif c.op in ("assign_track", "exclude_face", "move_track"):
            t = r.track(c.track) if c.track else None
            if t is None:
                lost(c, f"track {c.track.track_id if c.track else '?'}")
                continue
            if c.op == "assign_track":
                track_cast[t] = c.cast_id
            elif c.op == "exclude_face":
                excluded[face_id(t, c.frame_idx or 0)] = c.exclude
            else:
                target = r.identity(c.identity) if c.identity else None
                if target is None:
                    lost(c, f"identity {c.identity.identity_id if c.identity else '?'}")
                    continue
                src = r.identity_of(t)
                if src is not None:
                    r.members[src].remove(t)
                r.members[target].append(t)
        elif c.op == "merge":
            keep = r.identity(c.identity) if c.identity else None
            other = r.identity(c.other) if c.other else None
            if keep is None or other is None:
                lost(c, f"identity {(c.identity if keep is None else c.other).identity_id}")  # type: ignore[union-attr]
                continue
            if keep != other:
                r.members[keep].extend(r.members.pop(other))
                moved_labels = labels.pop(other, [])
                if not any(lb.cast_id for lb in labels.get(keep, [])):  # a reviewer's merge: the kept label wins
                    labels[keep] = labels.get(keep, []) + moved_labels
        elif c.op == "assign_voice":
            voice_labels.append((c.spans, c.cast_id))
        elif c.op in ("reject", "mark"):
            ident = r.identity(c.identity) if c.identity else None
            if ident is None or c.identity is None:
                lost(c, f"identity {c.identity.identity_id if c.identity else '?'}")
            elif c.op == "reject" and c.cast_id:
                (rejected.setdefault(ident, set()).add if c.active else rejected.setdefault(ident, set()).discard)(c.cast_id)
            elif c.op == "mark":
                marks[ident] = (c.kind, c.label)
                if c.kind in ("guest", "not_face"):  # nobody in the cast
                    labels.pop(ident, None)
        elif c.op == "split":
            moved = [t for a in c.tracks if (t := r.track(a)) is not None]
            if not moved:
                lost(c, "track set")
                continue
            for t in moved:
                src = r.identity_of(t)
                if src is not None:
                    r.members[src].remove(t)
            r.members[f"split_{c.seq:04d}"] = moved

    out_identities = []
    for ident, members in r.members.items():
        if not members:
            continue
        members = sorted(set(members), key=lambda t: r.tracks[t].first_ts if t in r.tracks else 0)
        base = r.base.get(ident)
        out_identities.append(
            Identity(
                identity_id=ident,
                track_ids=members,
                size=len(members),
                cohesion=base.cohesion if base else 0.0,
                rep_face_id=base.rep_face_id if base else None,
                first_ts=min((r.tracks[t].first_ts for t in members if t in r.tracks), default=0.0),
                kind=base.kind if base else "face",
                reason=base.reason if base else None,
            )
        )
    out_identities.sort(key=lambda i: (i.first_ts, i.identity_id))
    effective = identities.model_copy(update={"identities": out_identities})
    cast_of_identity, label_tracks, conflicts = _settle_labels(labels, r)
    for t, cast in label_tracks.items():
        track_cast.setdefault(t, cast)
    assignments = Assignments(
        ep_id=log.ep_id,
        run_id=log.run_id,
        manual_assignments={k: v for k, v in cast_of_identity.items() if v and k in r.members and r.members[k]},
        track_overrides={str(k): v for k, v in track_cast.items() if v},
        face_exclusions=sorted(k for k, v in excluded.items() if v),
        marks={k: kind for k, (kind, _) in marks.items() if kind and r.members.get(k)},
        guest_labels={k: label for k, (kind, label) in marks.items() if kind == "guest" and label and r.members.get(k)},
        rejected={k: sorted(v) for k, v in rejected.items() if v and r.members.get(k)},
    )
    return Resolved(effective, assignments, unattached, conflicts, voice_labels=voice_labels)


def _settle_labels(labels: dict[str, list[_Label]], r: _Resolver) -> tuple[dict[str, Optional[str]], dict[int, str], list[LabelConflict]]:
    """(cast per identity, cast per track for labels that share an identity with another, conflicts)."""
    cast_of_identity: dict[str, Optional[str]] = {}
    track_cast: dict[int, str] = {}
    conflicts: list[LabelConflict] = []
    for ident, given in labels.items():
        members = set(r.members.get(ident, []))
        named = [lb for lb in given if lb.cast_id]
        if not named:
            cast_of_identity[ident] = None
            continue
        casts = sorted({lb.cast_id for lb in named if lb.cast_id})
        # The identity takes the label covering most of its tracks; with several different labels, each
        # also holds the tracks it was given with, so every labelled person keeps their seconds.
        main = max(named, key=lambda lb: (len(lb.tracks & members), lb.seq))
        cast_of_identity[ident] = main.cast_id
        if len(casts) > 1:
            for lb in named:
                for t in lb.tracks & members:
                    track_cast[t] = lb.cast_id  # type: ignore[assignment]
            conflicts.append(
                LabelConflict(
                    kind="merged",
                    identity_id=ident,
                    cast_ids=casts,
                    seqs=sorted(lb.seq for lb in named),
                    reason=f"{ident} now holds tracks labelled {', '.join(casts)}; each label kept on its own tracks",
                )
            )
    for ident, given in labels.items():
        members = set(r.members.get(ident, []))
        for lb in given:
            if not lb.cast_id:
                continue
            parts = {o for t in lb.tracks - members if (o := r.identity_of(t)) is not None and o != ident}
            elsewhere = sorted(o for o in parts if cast_of_identity.get(o) != lb.cast_id)
            if elsewhere:
                conflicts.append(
                    LabelConflict(
                        kind="split",
                        identity_id=ident,
                        cast_ids=[lb.cast_id],
                        seqs=[lb.seq],
                        identities=elsewhere,
                        reason=f"tracks labelled {lb.cast_id} are now also in {', '.join(elsewhere)}, which carry no such label",
                    )
                )
    return cast_of_identity, track_cast, conflicts


def undone_seqs(log: CorrectionsLog) -> set[int]:
    """Entries taken back by an ``undo`` entry (the log itself is never rewritten)."""
    return {c.target_seq for c in log.corrections if c.op == "undo" and c.target_seq is not None}


def last_undoable(log: CorrectionsLog) -> Optional[int]:
    """The newest entry still in effect (not an undo, not undone): what "undo" takes back next."""
    undone = undone_seqs(log)
    for c in sorted(log.corrections, key=lambda c: -c.seq):
        if c.op != "undo" and c.seq not in undone:
            return c.seq
    return None


def load_corrections(storage: Storage, layout: RunLayout) -> CorrectionsLog:
    key = layout.manifest(CORRECTIONS_FILE)
    if storage.exists(key):
        return read_model(storage, key, CorrectionsLog)
    return CorrectionsLog(ep_id=layout.ep_id, run_id=layout.run_id)
