"""The keyframe knobs, speed against error: every setting run over the accuracy benchmark's episodes.

    python -m bench.keyframes [--out bench/results/keyframes_2core.json]

For each setting of ``detect_track.keyframe_*`` and ``faces_embed.max_faces_per_track`` (one knob moved
from the defaults at a time, and ``keyframe_max_gap=1``: every sampled frame detected, as before
keyframes), the four accuracy episodes and the two distractor episodes are run from scratch and scored
against their truth. Reported per setting: the share of sampled frames the detector ran on, the detector
actors' CPU seconds for detection (resize + detect + chips), faces embedded, and the accuracy numbers
(per-person screen-time error median / mean / max, purity, recall on every sampled frame (detected and
interpolated alike), extra clusters per person, distractor seconds counted).

The synthetic faces move in straight lines, which interpolation follows exactly; the real clips
(``real_footage``) say how far an interpolated box is from where the detector puts the face on real motion.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from actors.detections import iou_matrix
from pipelines.config import parse_overrides
from pipelines.layout import RunLayout
from pipelines.ray_env import ensure_ray
from pipelines.registry import FACES, SCREENTIME, TRACK_METRICS
from pipelines.runner import run_pipeline
from pipelines.sample.evaluate import evaluate_run
from pipelines.schemas import DetectionRow
from pipelines.storage import LocalStorage

from .distractors import distractor_outcomes
from .episodes import ACCURACY_EPISODES, DISTRACTOR_EPISODES, bench_dir, distractor_episode, episode

SETTINGS: dict[str, list[str]] = {
    "every frame (max_gap 1)": ["detect_track.keyframe_max_gap=1"],
    "max_gap 4": ["detect_track.keyframe_max_gap=4"],
    "defaults (max_gap 8, iou 0.3, change 20, 3 faces)": [],
    "max_gap 16": ["detect_track.keyframe_max_gap=16"],
    "match_iou 0.5": ["detect_track.keyframe_match_iou=0.5"],
    "max_change 10": ["detect_track.keyframe_max_change=10"],
    "max_change 40": ["detect_track.keyframe_max_change=40"],
    "max_faces_per_track 1": ["faces_embed.max_faces_per_track=1"],
    "max_faces_per_track 2": ["faces_embed.max_faces_per_track=2"],
}
DETECTION_WORK = ("resize", "detect", "chips")


def run_setting(storage: LocalStorage, name: str, overrides: list[str]) -> dict:
    run_id = "kf-" + "".join(c if c.isalnum() else "-" for c in name.lower())[:40].strip("-")
    sampled = detected = embedded = 0
    work = 0.0
    errors: list[float] = []
    purities: list[float] = []
    extras: list[float] = []
    recall_hits = recall_faces = 0.0
    counted = 0.0
    episodes = [(f"kfb-s01e{seed % 100:02d}", *episode(seed, s), False) for seed, s in ACCURACY_EPISODES]
    episodes += [(f"kfb-s02e{seed % 100:02d}", *distractor_episode(seed, s), True) for seed, s in DISTRACTOR_EPISODES]
    started = time.time()
    for ep_id, video, truth, distractors in episodes:
        run_pipeline(storage=storage, ep_id=ep_id, run_id=run_id, video=str(video), overrides=parse_overrides([*overrides, "naming.enabled=false"]), force=True)
        layout = RunLayout(ep_id, run_id)
        metrics = TRACK_METRICS.read(storage, layout)
        sampled += metrics.frames_sampled
        detected += metrics.frames_detected if metrics.frames_detected is not None else metrics.frames_sampled
        work += sum(metrics.work_s.get(k, 0.0) for k in DETECTION_WORK)
        embedded += sum(1 for f in FACES.read(storage, layout) if f.embedding_model)
        ev = evaluate_run(storage, layout, truth)
        errors += list(ev.errors.values())
        purities.append(ev.purity)
        extras.append(ev.extra_clusters_per_person)
        recall_hits += ev.recall * ev.recall_faces
        recall_faces += ev.recall_faces
        if distractors:
            counted += distractor_outcomes(storage, layout, truth, SCREENTIME.read(storage, layout))["counted_s"]
    result = {
        "overrides": overrides,
        "frames_detected_share": round(detected / max(1, sampled), 3),
        "detection_cpu_s": round(work, 2),
        "faces_embedded": embedded,
        "error_median": round(float(np.median(errors)), 4),
        "error_mean": round(float(np.mean(errors)), 4),
        "error_max": round(float(np.max(errors)), 4),
        "purity_min": round(float(np.min(purities)), 4),
        "recall": round(recall_hits / max(1.0, recall_faces), 4),
        "extra_clusters_per_person": round(float(np.mean(extras)), 4),
        "distractor_seconds_counted": round(counted, 3),
        "wall_s": round(time.time() - started, 1),
    }
    print(f"{name}: {json.dumps(result)}", flush=True)
    return result


def _boxes_by_frame(detections: list[DetectionRow]) -> dict[int, np.ndarray]:
    by_frame: dict[int, list] = {}
    for d in detections:
        by_frame.setdefault(d.frame_idx, []).append(d.bbox_xyxy)
    return {f: np.array(boxes, np.float32) for f, boxes in by_frame.items()}


def _best_iou(d: DetectionRow, boxes_by_frame: dict[int, np.ndarray]) -> float:
    """The overlap of ``d`` with the best-matching box of its frame in the other run (0: none there)."""
    boxes = boxes_by_frame.get(d.frame_idx)
    return float(iou_matrix(np.array([d.bbox_xyxy], np.float32), boxes).max()) if boxes is not None else 0.0


def real_footage(storage: LocalStorage) -> dict:
    """On real footage (Megamind's cuts and camera moves, the carphone man's head in a moving car), the
    default keyframes against detecting every sampled frame: how close each interpolated box is to the box
    the detector finds on that frame (IoU), faces the detector finds that the keyframe run has nowhere,
    and each track-level screen-time difference."""
    from pipelines.registry import DETECTIONS
    from pipelines.review.live import live_screentime
    from pipelines.sample import media

    out = {}
    for name, video in (("megamind", media.megamind_video()), ("carphone", media.carphone_video())):
        runs = {}
        for run_id, overrides in (("kf-every", ["detect_track.keyframe_max_gap=1"]), ("kf-default", [])):
            run_pipeline(
                storage=storage,
                ep_id=f"kfr{name}-s01e01",
                run_id=run_id,
                video=str(video),
                overrides=parse_overrides([*overrides, "naming.enabled=false"]),
                force=True,
            )
            layout = RunLayout(f"kfr{name}-s01e01", run_id)
            runs[run_id] = (DETECTIONS.read(storage, layout), TRACK_METRICS.read(storage, layout), live_screentime(storage, layout, {}))
        every, keyed = runs["kf-every"][0], runs["kf-default"][0]
        every_boxes, keyed_boxes = _boxes_by_frame(every), _boxes_by_frame(keyed)
        ious = [_best_iou(d, every_boxes) for d in keyed if d.interpolated]
        missed = sum(1 for d in every if d.track_id is not None and _best_iou(d, keyed_boxes) < 0.3)
        seconds = {k: sorted(round(i.visual_s, 2) for i in v[2].identities if i.visual_s > 0) for k, v in runs.items()}
        out[name] = {
            "frames_detected_share": round((runs["kf-default"][1].frames_detected or 0) / max(1, runs["kf-default"][1].frames_sampled), 3),
            "interpolated": len(ious),
            "interpolated_iou_median": round(float(np.median(ious)), 3) if ious else None,
            "interpolated_iou_p10": round(float(np.percentile(ious, 10)), 3) if ious else None,
            "interpolated_below_0.5": sum(1 for i in ious if i < 0.5),
            "tracked_faces_missed": missed,
            "identity_seconds_every_frame": seconds["kf-every"],
            "identity_seconds_keyframes": seconds["kf-default"],
        }
        print(f"{name}: {json.dumps(out[name])}", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="bench/results/keyframes_2core.json")
    parser.add_argument("--only", action="append", default=[], help="run only settings whose name contains this")
    parser.add_argument("--skip-real", action="store_true", help="skip the real-footage comparison")
    args = parser.parse_args(argv)
    ensure_ray()
    storage = LocalStorage(bench_dir() / "runs")
    chosen = {k: v for k, v in SETTINGS.items() if not args.only or any(o in k for o in args.only)}
    results = {name: run_setting(storage, name, overrides) for name, overrides in chosen.items()}
    real = real_footage(storage) if not args.skip_real else {}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"episodes": len(ACCURACY_EPISODES) + len(DISTRACTOR_EPISODES), "settings": results, "real_footage": real}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
