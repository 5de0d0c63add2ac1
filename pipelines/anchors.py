"""Anchors: how a correction names tracks and identities so that it survives re-runs, and how an
anchor is found again among the current artifacts.

A track anchor keeps the track's frame span and a box; an identity anchor keeps its member tracks'
anchors and its centroid. ``AnchorMatcher`` finds them again: a track by id and span, else the one
overlapping it most in time (and place); an identity by the current identity holding most of the
anchor's tracks (an even split goes to the nearest centroid), else by centroid similarity alone.
"""

from __future__ import annotations

from collections import Counter
from typing import Optional

import numpy as np

from .schemas import ClusterCentroidsFile, IdentitiesFile, Identity, TrackRow
from .schemas.corrections import IdentityAnchor, TrackAnchor

CENTROID_MATCH = 0.5
"""Cosine an identity's centroid needs with an anchor's, when none of the anchor's tracks is found: lower
re-attaches a correction after a re-track that moved everything, at the risk of the wrong person."""
TRACK_OVERLAP_MIN = 0.5
"""Share of an anchor's frame span a current track must cover to be taken for it."""


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


class AnchorMatcher:
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
            top = max(votes.values())
            tied = [ident for ident, n in votes.items() if n == top]
            # An anchor split evenly (one track here, one there) goes to the part that looks most like it,
            # not to whichever vote was counted first.
            return max(tied, key=lambda ident: self._similarity(anchor, ident)) if len(tied) > 1 else tied[0]
        if anchor.centroid is not None and self.centroids:
            sims = {k: self._similarity(anchor, k) for k in self.centroids if k in self.members}
            if sims:
                best = max(sims, key=sims.__getitem__)
                if sims[best] >= CENTROID_MATCH:
                    return best
        return None

    def _similarity(self, anchor: IdentityAnchor, identity_id: str) -> float:
        """Cosine of the anchor's centroid with a current identity's (-1 when either is unknown)."""
        current = self.centroids.get(identity_id)
        if anchor.centroid is None or current is None:
            return -1.0
        return float(current @ np.asarray(anchor.centroid, np.float32))
