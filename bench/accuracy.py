"""Accuracy benchmark: several episodes built from real face media, scored against exact truth.

    python -m bench.accuracy [--episodes N] [--profile P]

Reports per-person screen-time error, cluster purity, extra clusters per person and detection recall
(faces >= 40 px), and checks them against the targets in bench/targets.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from pipelines.layout import RunLayout
from pipelines.ray_env import ensure_ray
from pipelines.registry import IDENTITIES, SCREENTIME
from pipelines.runner import run_pipeline
from pipelines.sample.evaluate import evaluate_run
from pipelines.storage import LocalStorage

from .distractors import distractor_outcomes
from .episodes import ACCURACY_EPISODES, DISTRACTOR_EPISODES, bench_dir, distractor_episode, episode

TARGETS = json.loads((Path(__file__).parent / "targets.json").read_text())


def run_id_of(profile: str | None) -> str:
    return f"acc-{profile or 'balanced'}"


def distractor_episodes(storage: LocalStorage, run_id: str, args: argparse.Namespace) -> dict:
    """Episodes with drawn faces, faces in picture frames and crowds of tiny faces: per-person error
    as above, and the seconds of distractors still counted as someone on screen (should be 0)."""
    from pipelines.config import parse_overrides

    errors, counted, junk, extras, kinds = [], 0.0, 0.0, 0.0, {}
    for seed, seconds in DISTRACTOR_EPISODES:
        video, truth = distractor_episode(seed, seconds)
        ep_id = f"bench-s02e{seed % 100:02d}"
        run_pipeline(
            storage=storage, ep_id=ep_id, run_id=run_id, video=str(video), profile=args.profile, overrides=parse_overrides(args.overrides), force=args.force
        )
        layout = RunLayout(ep_id, run_id)
        ev = evaluate_run(storage, layout, truth)
        report = SCREENTIME.read(storage, layout)
        out = distractor_outcomes(storage, layout, truth, report)
        errors += list(ev.errors.values())
        counted += out["counted_s"]
        junk += float(report.diagnostics.get("junk_s", 0.0))  # type: ignore[arg-type]
        extras += float(report.diagnostics.get("extras_s", 0.0))  # type: ignore[arg-type]
        for label, by_kind in out["identities_by_kind"].items():
            for kind, n in by_kind.items():
                kinds.setdefault(label, {}).setdefault(kind, 0)
                kinds[label][kind] += n
        print(
            f"\n{ep_id} (distractors): max person error {100 * max(ev.errors.values()):.2f}%, distractor seconds counted {out['counted_s']}, identities {out['identities_by_kind']}"
        )
    result = {
        "median_error": round(float(np.median(errors)), 4),
        "max_error": round(float(np.max(errors)), 4),
        "distractor_seconds_counted": round(counted, 3),
        "junk_s": round(junk, 3),
        "extras_s": round(extras, 3),
        "distractor_identities_by_kind": kinds,
    }
    print("distractors:", json.dumps(result))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--episodes", type=int, default=len(ACCURACY_EPISODES))
    parser.add_argument("--profile", default=None)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--force", action="store_true", help="recompute finished stages (after a code change)")
    args = parser.parse_args(argv)
    from pipelines.config import parse_overrides

    ensure_ray()
    storage = LocalStorage(bench_dir() / "runs")
    errors, purities, extras, recalls, spurious = [], [], [], [], 0
    junk_s = extras_s = 0.0
    junk_real = 0
    for seed, seconds in ACCURACY_EPISODES[: args.episodes]:
        video, truth = episode(seed, seconds)
        ep_id = f"bench-s01e{seed % 100:02d}"
        run_id = run_id_of(args.profile)
        t0 = time.time()
        run_pipeline(
            storage=storage, ep_id=ep_id, run_id=run_id, video=str(video), profile=args.profile, overrides=parse_overrides(args.overrides), force=args.force
        )
        ev = evaluate_run(storage, RunLayout(ep_id, run_id), truth)
        print(
            f"\n{ep_id} ({seconds:.0f}s, {time.time() - t0:.1f}s wall): purity {ev.purity:.3f}  extra/person {ev.extra_clusters_per_person:.2f}  "
            f"spurious ids {ev.spurious_identities}  recall {ev.recall:.3f} ({ev.recall_faces} faces)"
        )
        for person in sorted(ev.true_s):
            print(
                f"  {person:<8} true {ev.true_s[person]:7.2f}s  measured {ev.measured_s.get(person, 0.0):7.2f}s  error {100 * ev.errors.get(person, 0):5.2f}%"
            )
        report = SCREENTIME.read(storage, RunLayout(ep_id, run_id))
        kinds = {i.identity_id: i.kind for i in IDENTITIES.read(storage, RunLayout(ep_id, run_id)).identities}
        real_junk = [i for i, k in kinds.items() if k == "junk" and ev.identity_labels.get(i)]
        junk_s += float(report.diagnostics.get("junk_s", 0.0))  # type: ignore[arg-type]
        extras_s += float(report.diagnostics.get("extras_s", 0.0))  # type: ignore[arg-type]
        junk_real += len(real_junk)
        print(f"  junk {report.diagnostics.get('junk_s')}s ({len(real_junk)} junk identities are real faces), extras {report.diagnostics.get('extras_s')}s")
        errors += list(ev.errors.values())
        purities.append(ev.purity)
        extras.append(ev.extra_clusters_per_person)
        recalls.append((ev.recall, ev.recall_faces))
        spurious += ev.spurious_identities
    summary = {
        "median_error": float(np.median(errors)),
        "max_error": float(np.max(errors)),
        "purity": float(np.min(purities)),
        "extra_clusters_per_person": float(np.mean(extras)),
        "recall": float(sum(r * n for r, n in recalls) / max(1, sum(n for _, n in recalls))),
        "spurious_identities": spurious,
        "junk_s": junk_s,
        "junk_identities_that_are_faces": junk_real,
        "extras_s": extras_s,
    }
    print("\nsummary:", json.dumps({k: round(v, 4) for k, v in summary.items()}))
    summary["distractors"] = distractor_episodes(storage, run_id_of(args.profile), args)
    failed = [
        k for k, v in summary.items() if k in TARGETS and ((k in ("purity", "recall") and v < TARGETS[k]) or (k not in ("purity", "recall") and v > TARGETS[k]))
    ]
    print("targets:", "met" if not failed else f"MISSED {failed}", json.dumps(TARGETS))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
