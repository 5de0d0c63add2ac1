"""Human corrections, kept apart from the cluster output and re-attached after any stage re-runs.

Corrections are an append-only log (``corrections.json``, one model per operation:
:mod:`pipelines.schemas.corrections`). Each entry refers to tracks and identities through anchors, not
bare ids: a track anchor keeps the track's frame span and a box; an identity anchor keeps its member
tracks' anchors and its centroid. Replaying the log against the *current* artifacts re-attaches each
entry:

- a track: the current track with the same id and span, else the one overlapping it most in time
  (and place), if it covers at least half of the anchor;
- an identity: the current identity holding most of the anchor's tracks, else the identity whose
  centroid is most similar (cosine >= ``CENTROID_MATCH``); see :mod:`pipelines.anchors`;
- anything that cannot be re-attached is reported, never silently applied elsewhere.

Later entries win over earlier ones. Resolution order for screen time is unchanged: face exclusion >
track override > cluster assignment. Each operation is replayed by its own small handler
(:data:`HANDLERS`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Optional

from .anchors import AnchorMatcher
from .ids import face_id, parse_face_id
from .layout import RunLayout
from .registry import CORRECTIONS
from .schemas import (
    Assignments,
    ClusterCentroidsFile,
    IdentitiesFile,
    Identity,
    IdentityNaming,
    TrackRow,
)
from .schemas.corrections import (
    AssignCluster,
    AssignTrack,
    AssignVoice,
    ExcludeFace,
    IdentityAnchor,
    LabelConflict,
    Mark,
    Merge,
    MoveTrack,
    Reject,
    Split,
    Unattached,
    Undo,
)
from .schemas.corrections import Correction as Correction
from .schemas.corrections import CorrectionsLog as CorrectionsLog
from .storage import Storage


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


@dataclass
class _Replay:
    """What replaying the log has decided so far."""

    matcher: AnchorMatcher
    labels: dict[str, list[_Label]] = field(default_factory=dict)  # identity -> cluster labels given to (parts of) it
    track_cast: dict[int, Optional[str]] = field(default_factory=dict)
    excluded: dict[str, bool] = field(default_factory=dict)
    rejected: dict[str, set[str]] = field(default_factory=dict)
    voice_labels: list[tuple[list[list[float]], Optional[str]]] = field(default_factory=list)
    marks: dict[str, _Mark] = field(default_factory=dict)
    unattached: list[Unattached] = field(default_factory=list)

    def lost(self, c: Correction, what: str) -> None:
        self.unattached.append(Unattached(seq=c.seq, op=c.op, reason=f"{what} no longer matches any current {what.split()[0]}"))

    def identity(self, c: Correction, anchor: IdentityAnchor) -> Optional[str]:
        """The current identity ``anchor`` names, or None (reported as unattached)."""
        ident = self.matcher.identity(anchor)
        if ident is None:
            self.lost(c, f"identity {anchor.identity_id}")
        return ident


def _assign_cluster(r: _Replay, c: AssignCluster) -> None:
    if (ident := r.identity(c, c.identity)) is None:
        return
    label = _Label(c.seq, c.cast_id, r.matcher.anchor_tracks(c.identity))
    mark = r.marks.get(ident)
    if c.cast_id and mark and mark.excludes_cast and _same_tracks(mark.tracks, label.tracks):
        r.marks.pop(ident)  # naming the marked tracks a cast member undoes the guest / not-a-face mark
    # A label on tracks that an earlier label covered replaces it (a reviewer changing their mind); a
    # label on other tracks of the same identity stands beside it (a conflict).
    kept = [old for old in r.labels.get(ident, []) if not (old.tracks & label.tracks) and label.tracks]
    r.labels[ident] = kept + [label]


def _assign_track(r: _Replay, c: AssignTrack) -> None:
    if (t := r.matcher.track(c.track)) is None:
        return r.lost(c, f"track {c.track.track_id}")
    r.track_cast[t] = c.cast_id


def _exclude_face(r: _Replay, c: ExcludeFace) -> None:
    if (t := r.matcher.track(c.track)) is None:
        return r.lost(c, f"track {c.track.track_id}")
    r.excluded[face_id(t, c.frame_idx)] = c.exclude


def _move_track(r: _Replay, c: MoveTrack) -> None:
    if (t := r.matcher.track(c.track)) is None:
        return r.lost(c, f"track {c.track.track_id}")
    if (target := r.identity(c, c.identity)) is None:
        return
    if (src := r.matcher.identity_of(t)) is not None:
        r.matcher.members[src].remove(t)
    r.matcher.members[target].append(t)


def _merge(r: _Replay, c: Merge) -> None:
    if (keep := r.identity(c, c.identity)) is None or (other := r.identity(c, c.other)) is None or keep == other:
        return
    r.matcher.members[keep].extend(r.matcher.members.pop(other))
    moved_labels = r.labels.pop(other, [])
    if not any(lb.cast_id for lb in r.labels.get(keep, [])):  # a reviewer's merge: the kept label wins
        r.labels[keep] = r.labels.get(keep, []) + moved_labels


def _split(r: _Replay, c: Split) -> None:
    moved = [t for a in c.tracks if (t := r.matcher.track(a)) is not None]
    if not moved:
        return r.lost(c, "track set")
    for t in moved:
        if (src := r.matcher.identity_of(t)) is not None:
            r.matcher.members[src].remove(t)
    r.matcher.members[f"split_{c.seq:04d}"] = moved


def _reject(r: _Replay, c: Reject) -> None:
    if (ident := r.identity(c, c.identity)) is None:
        return
    given = r.rejected.setdefault(ident, set())
    (given.add if c.active else given.discard)(c.cast_id)


def _mark(r: _Replay, c: Mark) -> None:
    if (ident := r.identity(c, c.identity)) is None:
        return
    mark = _Mark(c.seq, c.kind, c.label, r.matcher.anchor_tracks(c.identity))
    r.marks[ident] = mark
    if mark.excludes_cast:  # nobody in the cast: it replaces labels given to the same tracks only
        r.labels[ident] = [lb for lb in r.labels.get(ident, []) if not _same_tracks(lb.tracks, mark.tracks)]


def _assign_voice(r: _Replay, c: AssignVoice) -> None:
    r.voice_labels.append((c.spans, c.cast_id))


HANDLERS: dict[type, Callable[[_Replay, Any], None]] = {
    AssignCluster: _assign_cluster,
    AssignTrack: _assign_track,
    ExcludeFace: _exclude_face,
    MoveTrack: _move_track,
    Merge: _merge,
    Split: _split,
    Reject: _reject,
    Mark: _mark,
    AssignVoice: _assign_voice,
    Undo: lambda r, c: None,  # read up front (undone_seqs): the entries it takes back are skipped
}
"""How each operation changes the replay; an operation without a handler fails loudly."""


def resolve(log: CorrectionsLog, identities: IdentitiesFile, tracks: list[TrackRow], centroids: ClusterCentroidsFile | None = None) -> Resolved:
    """The identities and assignments with the log replayed over the current artifacts."""
    replay = _Replay(AnchorMatcher(identities, tracks, centroids))
    undone = undone_seqs(log)
    for c in sorted(log.corrections, key=lambda c: c.seq):
        if c.seq not in undone:
            HANDLERS[type(c)](replay, c)
    r = replay.matcher
    cast_of_identity, label_tracks, conflicts = _settle_labels(replay.labels, replay.marks, r)
    track_cast = dict(replay.track_cast)
    for t, cast in label_tracks.items():
        track_cast.setdefault(t, cast)
    marks = replay.marks
    assignments = Assignments(
        ep_id=log.ep_id,
        run_id=log.run_id,
        manual_assignments={k: v for k, v in cast_of_identity.items() if v and k in r.members and r.members[k]},
        track_overrides={str(k): v for k, v in track_cast.items() if v},
        face_exclusions=sorted(k for k, v in replay.excluded.items() if v),
        marks={k: m.kind for k, m in marks.items() if m.kind and r.members.get(k)},  # type: ignore[misc]
        guest_labels={k: m.label for k, m in marks.items() if m.kind == "guest" and m.label and r.members.get(k)},
        rejected={k: sorted(v) for k, v in replay.rejected.items() if v and r.members.get(k)},
    )
    effective = identities.model_copy(update={"identities": _corrected_identities(r)})
    return Resolved(effective, assignments, clustering_version(identities, tracks), replay.unattached, conflicts, voice_labels=replay.voice_labels)


def _corrected_identities(r: AnchorMatcher) -> list[Identity]:
    """The identities as the replay left them (merged, split, tracks moved), by first appearance."""
    out = []
    for ident, members in r.members.items():
        if not members:
            continue
        members = sorted(set(members), key=lambda t: r.tracks[t].first_ts if t in r.tracks else 0)
        base = r.base.get(ident)
        rep = base.rep_face_id if base and base.rep_face_id and parse_face_id(base.rep_face_id)[0] in members else None  # not a face moved away
        out.append(
            Identity(
                identity_id=ident,
                track_ids=members,
                size=len(members),
                cohesion=base.cohesion if base else 0.0,
                rep_face_id=rep,
                first_ts=min((r.tracks[t].first_ts for t in members if t in r.tracks), default=0.0),
                kind=base.kind if base else "face",
                reason=base.reason if base else None,
            )
        )
    out.sort(key=lambda i: (i.first_ts, i.identity_id))
    return out


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
    return {c.target_seq for c in log.corrections if isinstance(c, Undo)}


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
    return CORRECTIONS.read_if_exists(storage, layout) or CorrectionsLog(ep_id=layout.ep_id, run_id=layout.run_id)
