"""Which tracks are faces worth counting: a validity gate for junk, and a rule for background extras.

**Junk** (the back of a head, hair, a face-like texture): a track is junk when at least two of these
independent signals say so, so no single weak signal (a profile view's odd landmarks, a dark scene's
low detector score) can throw a real face away:

- ``landmarks``: its typical landmark geometry is not a face's: eyes closer than 0.30 of the box width,
  or the nose outside the span of the eyes (measured on real faces: eyes 0.25-0.60 of the width, nose
  -0.09-0.91 of the way from one eye to the other; backs of heads: 0.17-0.25 and -0.18 or 1.16);
- ``low_score``: its mean detector score is below ``junk_score`` (real faces: 95% above 0.83);
- ``single_weak``: it was detected once, below 0.6.

**Extras** are real faces too small, too brief or too far in the background to count as someone on
screen: the face's largest height is under ``extra_face_frac`` of the frame; or the track lasts under
``extra_min_s``; or, ``extra_background``, it is at most 0.6 the height of a face seen at the same
time in the same shot and its crops are 10x blurrier (out of focus: the camera is on someone else).
Extras are reported apart, never silently dropped, and a reviewer can name one.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from statistics import median
from typing import Literal

from ..schemas import DetectionRow, FaceRow, TrackRow
from ..stage_settings import ClusterConfig

EYE_DISTANCE_MIN = 0.30
NOSE_SPAN = (-0.10, 1.10)
SINGLE_WEAK_SCORE = 0.6
BACKGROUND_SIZE_RATIO = 0.6
BACKGROUND_BLUR_RATIO = 0.1


@dataclass
class Verdict:
    kind: Literal["face", "junk", "extra"]
    reasons: list[str] = field(default_factory=list)

    @property
    def reason(self) -> str:
        return ", ".join(self.reasons)


@dataclass(frozen=True)
class ValidityRules:
    """Which tracks are junk or extras; built from the ``cluster`` config section (:meth:`from_config`),
    where each rule's default and trade-off live."""

    junk_gate: bool
    junk_score: float
    extra_face_frac: float
    extra_min_s: float
    extra_background: bool

    @classmethod
    def from_config(cls, cfg: ClusterConfig) -> ValidityRules:
        return cls(cfg.junk_gate, cfg.junk_score, cfg.extra_face_frac, cfg.extra_min_s, cfg.extra_background)


def _geometry_ok(d: DetectionRow) -> bool:
    x1, _, x2, _ = d.bbox_xyxy
    (lx, ly), (rx, ry), (nx, _), *_ = d.landmarks
    width = max(x2 - x1, 1e-6)
    eyes = ((rx - lx) ** 2 + (ry - ly) ** 2) ** 0.5 / width
    span = rx - lx
    nose = (nx - lx) / span if abs(span) > 1e-6 else 9.0
    return eyes >= EYE_DISTANCE_MIN and NOSE_SPAN[0] <= nose <= NOSE_SPAN[1]


def _junk_votes(track: TrackRow, dets: list[DetectionRow], rules: ValidityRules) -> list[str]:
    votes = []
    if dets and sum(_geometry_ok(d) for d in dets) < len(dets) / 2:
        votes.append("landmarks")
    if track.mean_conf < rules.junk_score:
        votes.append("low_score")
    if track.frame_count == 1 and track.mean_conf < SINGLE_WEAK_SCORE:
        votes.append("single_weak")
    return votes


def judge_tracks(tracks: list[TrackRow], detections: list[DetectionRow], faces: list[FaceRow], frame_height: int, rules: ValidityRules) -> dict[int, Verdict]:
    """A verdict per track: ``face``, ``junk`` (with the signals that voted) or ``extra`` (with why)."""
    dets_of: dict[int, list[DetectionRow]] = defaultdict(list)
    for d in detections:
        if d.track_id is not None:
            dets_of[d.track_id].append(d)
    blur_of: dict[int, float] = {}
    by_track_blur: dict[int, list[float]] = defaultdict(list)
    for f in faces:
        by_track_blur[f.track_id].append(f.blur)
    for track_id, values in by_track_blur.items():
        blur_of[track_id] = median(values)
    verdicts: dict[int, Verdict] = {}
    for t in tracks:
        votes = _junk_votes(t, dets_of.get(t.track_id, []), rules) if rules.junk_gate else []
        if len(votes) >= 2:
            verdicts[t.track_id] = Verdict("junk", votes)
            continue
        why = []
        if t.max_face_px < rules.extra_face_frac * frame_height:
            why.append("small")
        if t.end_s - t.start_s < rules.extra_min_s:
            why.append("brief")
        if rules.extra_background and _in_background(t, tracks, blur_of):
            why.append("background")
        verdicts[t.track_id] = Verdict("extra", why) if why else Verdict("face")
    return verdicts


def _in_background(track: TrackRow, tracks: list[TrackRow], blur_of: dict[int, float]) -> bool:
    """Much smaller and much blurrier than a face on screen at the same time in the same shot."""
    own_blur = blur_of.get(track.track_id)
    if own_blur is None:
        return False
    for other in tracks:
        if other.track_id == track.track_id or other.shot_idx != track.shot_idx:
            continue
        if min(other.end_s, track.end_s) - max(other.start_s, track.start_s) <= 0:
            continue
        other_blur = blur_of.get(other.track_id)
        if other_blur is None:
            continue
        if track.max_face_px <= BACKGROUND_SIZE_RATIO * other.max_face_px and own_blur <= BACKGROUND_BLUR_RATIO * other_blur:
            return True
    return False
