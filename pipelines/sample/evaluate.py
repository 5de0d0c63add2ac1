"""Score a finished run against an episode's ground truth.

Each detection is matched to the true face it overlaps (IoU >= 0.3) in its frame. An identity is
labelled with the person most of its matched detections belong to, as a reviewer naming clusters would;
screen time per person is then computed by the pipeline's own screen-time code with those labels.

- screen-time error: |measured - true| / true seconds, per person;
- purity: share of matched detections whose identity's label is their own person;
- extra clusters per person: identities labelled with a person, minus one, averaged over people;
- detection recall: true faces >= ``truth_min_face_px`` tall on sampled frames that some detection matches.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np

from actors.detections import iou_matrix

from ..layout import RunLayout
from ..registry import DETECTIONS, IDENTITIES, TRACK_METRICS
from ..schemas import Assignments, DetectionRow
from ..screentime import compute_screentime
from ..stage_settings import ScreentimeConfig
from ..storage import Storage
from .episode import GroundTruth

MATCH_IOU = 0.3


@dataclass
class Evaluation:
    true_s: dict[str, float]
    measured_s: dict[str, float]
    errors: dict[str, float]
    purity: float
    extra_clusters_per_person: float
    spurious_identities: int
    recall: float
    recall_faces: int
    identity_labels: dict[str, str | None] = field(default_factory=dict)

    @property
    def median_error(self) -> float:
        return float(np.median(list(self.errors.values()))) if self.errors else 0.0

    @property
    def max_error(self) -> float:
        return max(self.errors.values()) if self.errors else 0.0


def evaluate_run(storage: Storage, layout: RunLayout, truth: GroundTruth, truth_min_face_px: float = 40.0) -> Evaluation:
    detections = DETECTIONS.read(storage, layout)
    identities = IDENTITIES.read(storage, layout)
    metrics = TRACK_METRICS.read(storage, layout)

    gt_by_frame: dict[int, list[tuple[str, np.ndarray]]] = defaultdict(list)
    for frame, person, *box in truth.faces:
        gt_by_frame[frame].append((person, np.array(box, np.float32)))
    det_by_frame: dict[int, list[DetectionRow]] = defaultdict(list)
    for d in detections:
        det_by_frame[d.frame_idx].append(d)

    person_of_det: dict[tuple[int, int], str] = {}
    for frame, dets in det_by_frame.items():
        gts = gt_by_frame.get(frame, [])
        if not gts:
            continue
        iou = iou_matrix(np.array([d.bbox_xyxy for d in dets], np.float32), np.stack([g[1] for g in gts]))
        for i, d in enumerate(dets):
            j = int(np.argmax(iou[i]))
            if iou[i, j] >= MATCH_IOU:
                person_of_det[(d.frame_idx, d.det_idx)] = gts[j][0]

    matched = recall_faces = 0
    for frame in range(0, truth.frame_count, metrics.stride):
        gts = [g for g in gt_by_frame.get(frame, []) if g[1][3] - g[1][1] >= truth_min_face_px]
        if not gts:
            continue
        recall_faces += len(gts)
        dets = det_by_frame.get(frame, [])
        if dets:
            iou = iou_matrix(np.stack([g[1] for g in gts]), np.array([d.bbox_xyxy for d in dets], np.float32))
            matched += int((iou.max(axis=1) >= MATCH_IOU).sum())

    track_identity = {t: ident.identity_id for ident in identities.identities for t in ident.track_ids}
    votes: dict[str, Counter] = defaultdict(Counter)
    for d in detections:
        owner = person_of_det.get((d.frame_idx, d.det_idx))
        if d.track_id is not None and owner is not None and d.track_id in track_identity:
            votes[track_identity[d.track_id]][owner] += 1
    labels: dict[str, str | None] = {}
    for ident in identities.identities:
        counts = votes.get(ident.identity_id)
        labels[ident.identity_id] = counts.most_common(1)[0][0] if counts else None
    total_votes = sum(sum(c.values()) for c in votes.values())
    purity = sum(c.most_common(1)[0][1] for c in votes.values()) / total_votes if total_votes else 1.0

    per_person = Counter(label for label in labels.values() if label is not None)
    people = sorted(truth.seconds)
    extra = sum(max(0, per_person.get(p, 0) - 1) for p in people) / max(1, len(people))
    spurious = sum(1 for label in labels.values() if label is None)

    from ..review.inputs import load_inputs

    named = Assignments(ep_id=layout.ep_id, run_id=layout.run_id, manual_assignments={k: v for k, v in labels.items() if v is not None})
    inputs = load_inputs(storage, layout, named, with_detections=False)
    report = compute_screentime(inputs, ScreentimeConfig())
    measured = {m.cast_id: m.visual_s for m in report.metrics if m.cast_id}
    errors = {p: abs(measured.get(p, 0.0) - truth.seconds[p]) / truth.seconds[p] for p in people if truth.seconds[p] > 0}
    return Evaluation(
        true_s=dict(truth.seconds),
        measured_s=measured,
        errors=errors,
        purity=purity,
        extra_clusters_per_person=extra,
        spurious_identities=spurious,
        recall=matched / recall_faces if recall_faces else 1.0,
        recall_faces=recall_faces,
        identity_labels=labels,
    )
