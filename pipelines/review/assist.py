"""What the review page offers so that a reviewer decides in fewer keystrokes: which suggestions are worth
a numbered key, which other identities look like the same person (merge candidates), and thumbnails a
reviewer can read in dark scenes.

- **Suggestion floor**: a suggestion is offered as a key only from ``auto_threshold - window`` up (the
  show's calibrated threshold, else the embedder's default). Below it, a stranger's best match (SFace:
  different people score -0.1 to 0.45 against a photo) is noise: the card says "no likely cast match".
- **Merge candidates**: other identities by cosine similarity of their track prototypes' mean, never
  one seen in the same frame (one person cannot be in two places) and never two a reviewer named as
  different cast members, with a bonus for tracks in the same shot that never overlap in time, and a
  larger one for a *hand-off*: one identity's track ends and, moments later in the same shot, the
  other's starts where it ended (a track that broke on a small or turned face).
- **Readable thumbnails**: a dark or flat crop is contrast-stretched for display; the stored crop, the
  chip and the embedding are untouched.
"""

from __future__ import annotations

from typing import Any, Optional

import cv2
import numpy as np

from ..naming import identity_pairs
from ..registry import TRACK_PROTOTYPES, TRACK_REPS
from ..schemas import TrackRow
from ..storage import Storage
from .view import RunView

MERGE_MIN_SIMILARITY = 0.2
"""Lowest centroid similarity offered as a merge candidate (with its face on the card). A low floor
costs a glance at up to three faces; higher hides fragments the embedder finds unlike their own
person: on the review-effort benchmark, two fragments of one small, blurred face scored 0.22-0.25
with their own person and 0.31-0.33 with someone else."""
SAME_SHOT_BONUS = 0.1
"""Added to the similarity of two identities with tracks in the same shot that never overlap in time."""
HANDOFF_BONUS = 0.3
"""Added for a hand-off (see :func:`hand_off_shift`). It outweighs the embedder's spread between people on a
small face (0.2-0.35); a false hand-off needs two people swapping places within ``HANDOFF_MAX_GAP_S``
in one shot, which a shot rarely shows."""
HANDOFF_MAX_GAP_S = 1.0
"""Longest gap between one track's last detection and the next's first that still counts as a hand-off.
Longer admits a different person walking into the same spot; shorter misses faces lost for a second."""
HANDOFF_MAX_SHIFT = 0.5
"""Largest distance, in face heights, between where one side's motion carries the face across the gap
and where the other side has it. Larger joins people crossing one spot; smaller misses a fast pan
(the benchmark's panning fragment: 0.09; a different person leaving that spot: 0.6)."""
MERGE_CANDIDATES = 3
DARK_MEAN_LUMA = 85
"""Mean luma (0-255) under which a thumbnail is brightened for display."""
FLAT_RANGE = 90
"""Luma range (2nd to 98th percentile) under which a thumbnail is stretched for display."""


def suggestion_floor(auto_threshold: Optional[float], window: float) -> Optional[float]:
    """The lowest score offered as a numbered key (None: no naming threshold known for this run)."""
    return None if auto_threshold is None else round(auto_threshold - window, 4)


def identity_centroids(storage: Storage, view: RunView) -> dict[str, np.ndarray]:
    """Each current identity's mean track prototype (L2-normalised), corrections applied."""
    layout = view.layout
    if not TRACK_PROTOTYPES.exists(storage, layout):
        return {}
    prototypes = TRACK_PROTOTYPES.read(storage, layout)
    rows = {r.track_id: r.prototype_row for r in TRACK_REPS.read(storage, layout) if r.prototype_row is not None}
    out = {}
    for ident in view.resolved.identities.identities:
        members = [prototypes[rows[t]] for t in ident.track_ids if t in rows]
        if members:
            mean = np.mean(members, axis=0)
            norm = float(np.linalg.norm(mean))
            if norm > 0:
                out[ident.identity_id] = mean / norm
    return out


def _same_shot_apart(a: list[int], b: list[int], view: RunView) -> bool:
    """Tracks of both in one shot, and no track of one overlapping a track of the other in time."""
    ta = [view.tracks[t] for t in a if t in view.tracks]
    tb = [view.tracks[t] for t in b if t in view.tracks]
    if any(x.first_frame_idx <= y.last_frame_idx and y.first_frame_idx <= x.last_frame_idx for x in ta for y in tb):
        return False
    return bool({x.shot_idx for x in ta} & {y.shot_idx for y in tb})


def _centres(tracks: list[TrackRow], shot: int) -> np.ndarray:
    """(frame, centre x, centre y, height) of the sampled boxes of ``tracks`` in ``shot``, by frame."""
    rows = [(b[4], (b[0] + b[2]) / 2, (b[1] + b[3]) / 2, b[3] - b[1]) for t in tracks if t.shot_idx == shot for b in t.bboxes_sampled if len(b) > 4]
    return np.array(sorted(rows), dtype=np.float64).reshape(-1, 4)


def _predicted(path: np.ndarray, frame: float, ahead: bool) -> Optional[np.ndarray]:
    """Where ``path`` puts the face's centre at ``frame``, moving as its boxes nearest that frame moved
    (up to 4, least squares); None for a path of one box, which says nothing of its motion."""
    near = path[-4:] if ahead else path[:4]
    if len(near) < 2 or near[-1, 0] == near[0, 0]:
        return None
    fit = np.polyfit(near[:, 0], near[:, 1:3], 1)
    return fit[0] * frame + fit[1]


def hand_off_shift(before: list[TrackRow], after: list[TrackRow]) -> float:
    """How far (in face heights) the face that ``before``'s tracks leave in a shot is from where one of
    ``after``'s tracks starts, moments later in that shot, with a side's motion carried across the gap
    (the closer of the two sides' predictions; the plain distance when neither side moved in view);
    ``inf`` when no track of ``after`` starts within ``HANDOFF_MAX_GAP_S`` of one of ``before``'s ending."""
    best = float("inf")
    for x in before:
        for y in after:
            if x.shot_idx != y.shot_idx or not 0 < y.first_ts - x.last_ts <= HANDOFF_MAX_GAP_S:
                continue
            a = _centres([t for t in before if t.last_frame_idx <= x.last_frame_idx], x.shot_idx)
            b = _centres([t for t in after if t.first_frame_idx >= y.first_frame_idx], y.shot_idx)
            if not len(a) or not len(b):
                continue
            height = max(float(a[-1, 3] + b[0, 3]) / 2, 1.0)
            forward, backward = _predicted(a, b[0, 0], ahead=True), _predicted(b, a[-1, 0], ahead=False)
            misses = [np.hypot(*(forward - b[0, 1:3]))] if forward is not None else []
            misses += [np.hypot(*(backward - a[-1, 1:3]))] if backward is not None else []
            miss = min(misses) if misses else np.hypot(*(a[-1, 1:3] - b[0, 1:3]))
            best = min(best, float(miss) / height)
    return best


def _handed_off(a: list[int], b: list[int], view: RunView) -> bool:
    ta = [view.tracks[t] for t in a if t in view.tracks]
    tb = [view.tracks[t] for t in b if t in view.tracks]
    return min(hand_off_shift(ta, tb), hand_off_shift(tb, ta)) <= HANDOFF_MAX_SHIFT


def _named_apart(view: RunView) -> set[frozenset[str]]:
    """Pairs of identities a reviewer named as two different cast members: never one person."""
    manual = view.resolved.assignments.manual_assignments
    return {frozenset((a, b)) for a in manual for b in manual if a < b and manual[a] != manual[b]}


def merge_candidates(storage: Storage, view: RunView, limit: int = MERGE_CANDIDATES) -> dict[str, list[dict[str, Any]]]:
    """Per identity, up to ``limit`` others most likely to be the same person, best first."""
    centroids = identity_centroids(storage, view)
    idents = [i for i in view.resolved.identities.identities if i.identity_id in centroids and i.kind != "junk"]
    if len(idents) < 2:
        return {}
    ids = [i.identity_id for i in idents]
    sims = np.stack([centroids[i] for i in ids]) @ np.stack([centroids[i] for i in ids]).T
    identity_of = {t: i.identity_id for i in view.resolved.identities.identities for t in i.track_ids}
    together = identity_pairs(view.resolved.identities.co_occurring_tracks, identity_of)
    together |= _named_apart(view)
    members = {i.identity_id: i.track_ids for i in idents}
    out: dict[str, list[dict[str, Any]]] = {}
    for a, ident in enumerate(ids):
        found: list[tuple[float, dict[str, Any]]] = []
        for b, other in enumerate(ids):
            similarity = float(sims[a, b])
            if a == b or similarity < MERGE_MIN_SIMILARITY or frozenset((ident, other)) in together:
                continue
            same_shot = _same_shot_apart(members[ident], members[other], view)
            handoff = same_shot and _handed_off(members[ident], members[other], view)
            candidate = {"identity_id": other, "similarity": round(similarity, 3), "same_shot": same_shot, "handoff": handoff}
            bonus = (SAME_SHOT_BONUS if same_shot else 0.0) + (HANDOFF_BONUS if handoff else 0.0)
            found.append((similarity + bonus, candidate))
        found.sort(key=lambda c: -c[0])
        out[ident] = [c for _, c in found[:limit]]
    return out


def readable_thumbnail(jpeg: bytes) -> bytes:
    """The crop as is when a reviewer can read it; else its luma stretched (2nd-98th percentile) and
    locally equalised (CLAHE), colours kept. For display only."""
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        return jpeg
    luma = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    low, high = np.percentile(luma, (2, 98))
    if luma.mean() >= DARK_MEAN_LUMA and high - low >= FLAT_RANGE:
        return jpeg
    lab = cv2.cvtColor(image, cv2.COLOR_BGR2LAB)
    lightness = lab[:, :, 0].astype(np.float32)
    lo, hi = np.percentile(lightness, (2, 98))
    stretched = np.clip((lightness - lo) * (255.0 / max(hi - lo, 1.0)), 0, 255).astype(np.uint8)
    lab[:, :, 0] = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(4, 4)).apply(stretched)
    ok, out = cv2.imencode(".jpg", cv2.cvtColor(lab, cv2.COLOR_LAB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    return out.tobytes() if ok else jpeg
