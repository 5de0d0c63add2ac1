"""Human corrections, kept apart from the cluster output and re-attached after any stage re-runs.

Corrections are an append-only log (``corrections.json``). Each entry refers to tracks and identities
through anchors, not bare ids: a track anchor keeps the track's frame span and a box; an identity
anchor keeps its member tracks' anchors and its centroid. Replaying the log against the *current*
artifacts re-attaches each entry:

- a track: the current track with the same id and span, else the one overlapping it most in time
  (and place), if it covers at least half of the anchor;
- an identity: the current identity holding most of the anchor's tracks, else the identity whose
  centroid is most similar (cosine >= ``CENTROID_MATCH``); see :mod:`pipelines.anchors`;
- anything that cannot be re-attached is reported, never silently applied elsewhere.

Later entries win over earlier ones. Resolution order for screen time is unchanged: face exclusion >
track override > cluster assignment.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

from .anchors import AnchorMatcher, IdentityAnchor, TrackAnchor
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
    group: Optional[str] = Field(None, description="corrections made in one step (a bulk action) share it: one undo takes them all back")
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


def clustering_version(identities: IdentitiesFile, tracks: list[TrackRow]) -> str:
    """What identity and track ids mean now: a digest of the clustering's identities (id -> tracks) and
    the tracks' spans. A re-run of ``detect_track`` or ``cluster`` that changes either changes it, so a
    correction made against ids from before can be refused instead of landing on other people;
    corrections themselves never change it (their new identities get ids that are never reused)."""
    digest = hashlib.sha256()
    for ident in sorted(identities.identities, key=lambda i: i.identity_id):
        digest.update(f"{ident.identity_id}:{','.join(map(str, sorted(ident.track_ids)))};".encode())
    for t in sorted(tracks, key=lambda t: t.track_id):
        digest.update(f"{t.track_id}:{t.first_frame_idx}-{t.last_frame_idx};".encode())
    return digest.hexdigest()[:16]


@dataclass
class Resolved:
    identities: IdentitiesFile
    assignments: Assignments
    cluster_version: str
    unattached: list[Unattached] = field(default_factory=list)
    conflicts: list[LabelConflict] = field(default_factory=list)
    naming: dict[str, IdentityNaming] = field(default_factory=dict)  # the naming stage's view, by identity
    auto_threshold: Optional[float] = None  # the naming stage's threshold (the show's calibration, else the default)
    voice_labels: list[tuple[list[list[float]], Optional[str]]] = field(default_factory=list)  # (voice anchor, cast id), in order


@dataclass
class _Label:
    seq: int
    cast_id: Optional[str]
    tracks: set[int]


@dataclass
class _Mark:
    seq: int
    kind: Optional[str]
    label: Optional[str]
    tracks: set[int]

    @property
    def excludes_cast(self) -> bool:
        return self.kind in ("guest", "not_face")


def _same_tracks(a: set[int], b: set[int]) -> bool:
    """Whether two entries speak of the same tracks: a reviewer changing their mind, not two people that a
    re-cluster put together. An entry re-attached by its centroid alone (no tracks) covers everything."""
    return not a or not b or bool(a & b)


def resolve(log: CorrectionsLog, identities: IdentitiesFile, tracks: list[TrackRow], centroids: ClusterCentroidsFile | None = None) -> Resolved:
    r = AnchorMatcher(identities, tracks, centroids)
    labels: dict[str, list[_Label]] = {}  # identity -> cluster labels given to (parts of) it
    track_cast: dict[int, Optional[str]] = {}
    excluded: dict[str, bool] = {}
    rejected: dict[str, set[str]] = {}
    voice_labels: list[tuple[list[list[float]], Optional[str]]] = []
    marks: dict[str, _Mark] = {}
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
                mark = marks.get(ident)
                if c.cast_id and mark and mark.excludes_cast and _same_tracks(mark.tracks, label.tracks):
                    marks.pop(ident)  # naming the marked tracks a cast member undoes the guest / not-a-face mark
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
                mark = _Mark(c.seq, c.kind, c.label, r.anchor_tracks(c.identity))
                marks[ident] = mark
                if mark.excludes_cast:  # nobody in the cast: it replaces labels given to the same tracks only
                    labels[ident] = [lb for lb in labels.get(ident, []) if not _same_tracks(lb.tracks, mark.tracks)]
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
    cast_of_identity, label_tracks, conflicts = _settle_labels(labels, marks, r)
    for t, cast in label_tracks.items():
        track_cast.setdefault(t, cast)
    assignments = Assignments(
        ep_id=log.ep_id,
        run_id=log.run_id,
        manual_assignments={k: v for k, v in cast_of_identity.items() if v and k in r.members and r.members[k]},
        track_overrides={str(k): v for k, v in track_cast.items() if v},
        face_exclusions=sorted(k for k, v in excluded.items() if v),
        marks={k: m.kind for k, m in marks.items() if m.kind and r.members.get(k)},
        guest_labels={k: m.label for k, m in marks.items() if m.kind == "guest" and m.label and r.members.get(k)},
        rejected={k: sorted(v) for k, v in rejected.items() if v and r.members.get(k)},
    )
    return Resolved(effective, assignments, clustering_version(identities, tracks), unattached, conflicts, voice_labels=voice_labels)


def _settle_labels(
    labels: dict[str, list[_Label]], marks: dict[str, _Mark], r: AnchorMatcher
) -> tuple[dict[str, Optional[str]], dict[int, str], list[LabelConflict]]:
    """(cast per identity, cast per track for labels that share an identity with another label or with a
    guest / not-a-face mark, conflicts)."""
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
        mark = marks.get(ident)
        marked = mark is not None and mark.excludes_cast
        # The identity takes the label covering most of its tracks; with several different labels, or a
        # label beside a guest / not-a-face mark (which keeps the identity), each label also holds the
        # tracks it was given with, so every labelled person keeps their seconds.
        main = max(named, key=lambda lb: (len(lb.tracks & members), lb.seq))
        cast_of_identity[ident] = None if marked else main.cast_id
        if len(casts) > 1 or marked:
            for lb in named:
                for t in lb.tracks & members:
                    track_cast[t] = lb.cast_id  # type: ignore[assignment]
            mark_kind = mark.kind if marked and mark else None
            conflicts.append(
                LabelConflict(
                    kind="merged",
                    identity_id=ident,
                    cast_ids=casts,
                    seqs=sorted([lb.seq for lb in named] + ([mark.seq] if marked and mark else [])),
                    mark=mark_kind,  # type: ignore[arg-type]
                    reason=f"{ident} now holds tracks labelled {', '.join(casts)}"
                    + (f" and tracks marked {mark_kind}" if mark_kind else "")
                    + "; each label kept on its own tracks",
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


def undo_targets(log: CorrectionsLog, seq: Optional[int] = None) -> list[int]:
    """What one undo takes back: entry ``seq`` (default: the newest in effect) and, when it was made in
    one step with others (``group``), those still in effect too. Empty when there is nothing to undo."""
    target = seq if seq is not None else last_undoable(log)
    undone = undone_seqs(log)
    entry = next((c for c in log.corrections if c.seq == target), None)
    if entry is None or entry.op == "undo" or entry.seq in undone:
        return []
    if entry.group is None:
        return [entry.seq]
    return [c.seq for c in log.corrections if c.group == entry.group and c.op != "undo" and c.seq not in undone]


def load_corrections(storage: Storage, layout: RunLayout) -> CorrectionsLog:
    key = layout.manifest(CORRECTIONS_FILE)
    if storage.exists(key):
        return read_model(storage, key, CorrectionsLog)
    return CorrectionsLog(ep_id=layout.ep_id, run_id=layout.run_id)
