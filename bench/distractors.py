"""What became of the distractors in a run: each detection is matched to a true face (it is someone) or
to a distractor's box (IoU >= 0.3, following the background's pan); each identity takes its
detections' majority. Seconds of identities that are mostly distractors and still counted as someone
on screen (not junk, not an extra) are the failures."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import numpy as np

from actors.detections import iou_matrix
from pipelines.layout import RunLayout
from pipelines.registry import DETECTIONS, IDENTITIES
from pipelines.sample.episode import GroundTruth
from pipelines.schemas import ScreentimeReport
from pipelines.storage import Storage

MATCH_IOU = 0.3


def _distractor_boxes(truth: GroundTruth, frame: int) -> list[tuple[str, np.ndarray]]:
    out = []
    for first, end, kind, x1, y1, x2, y2, pan in truth.distractors:
        if first <= frame < end:
            t = (frame - first) / truth.fps
            dur = (end - first) / truth.fps
            x0 = int(abs(pan) * t) if pan >= 0 else int(abs(pan) * (dur - t))
            out.append((kind, np.array([x1 - x0, y1, x2 - x0, y2], np.float32)))
    return out


def distractor_outcomes(storage: Storage, layout: RunLayout, truth: GroundTruth, report: ScreentimeReport) -> dict[str, Any]:
    dets = DETECTIONS.read(storage, layout)
    identities = IDENTITIES.read(storage, layout).identities
    people: dict[int, list[np.ndarray]] = defaultdict(list)
    for frame, _person, *box in truth.faces:
        people[frame].append(np.array(box, np.float32))
    label_of_track: dict[int, Counter] = defaultdict(Counter)
    for d in dets:
        if d.track_id is None:
            continue
        box = np.array([d.bbox_xyxy], np.float32)
        if people.get(d.frame_idx) and iou_matrix(box, np.stack(people[d.frame_idx])).max() >= MATCH_IOU:
            label_of_track[d.track_id]["person"] += 1
            continue
        found = "unlabelled"
        for kind, dbox in _distractor_boxes(truth, d.frame_idx):
            if iou_matrix(box, dbox[None]).max() >= MATCH_IOU:
                found = kind
                break
        label_of_track[d.track_id][found] += 1
    seconds = {i.identity_id: (i.visual_s, i.kind) for i in report.identities}
    outcome: dict[str, Counter] = defaultdict(Counter)
    counted_s = 0.0
    for ident in identities:
        votes = sum((label_of_track[t] for t in ident.track_ids), Counter())
        if not votes:
            continue
        label = votes.most_common(1)[0][0]
        if label in ("person", "unlabelled"):
            continue
        outcome[label][ident.kind] += 1
        visual, kind = seconds.get(ident.identity_id, (0.0, "junk"))
        if ident.kind == "face" and kind not in ("extra",):
            counted_s += visual
    return {"counted_s": round(counted_s, 3), "identities_by_kind": {k: dict(v) for k, v in outcome.items()}}
