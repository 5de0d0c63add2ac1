"""``screenalytics demo``: build the bundled sample episode from real face media and run it."""

from __future__ import annotations

import time
from pathlib import Path

from ..layout import RunLayout
from ..runner import run_pipeline
from ..storage import LocalStorage
from .episode import GroundTruth

SAMPLE_EP = "sample-s01e01"


def build_sample(data_dir: Path) -> tuple[Path, GroundTruth]:
    from .episode import render_episode, sample_episode_spec
    from .media import load_sprites

    video = data_dir / "raw" / SAMPLE_EP / "video.mp4"
    truth_path = video.with_name("truth.json")
    if video.is_file() and truth_path.is_file():
        return video, GroundTruth.load(truth_path)
    print(f"building the sample episode from real face media in registry packages -> {video}")
    truth = render_episode(sample_episode_spec(), load_sprites(), video)
    truth.save(truth_path)
    return video, truth


def run_demo(data_dir: Path, progress, ray_address: str | None = None) -> int:
    from ..review.table import format_table
    from .evaluate import evaluate_run

    video, truth = build_sample(data_dir)
    storage = LocalStorage(data_dir)
    t0 = time.time()
    result = run_pipeline(storage=storage, ep_id=SAMPLE_EP, video=str(video), progress=progress, ray_address=ray_address)
    progress.close()
    for o in result.outcomes:
        print(f"{o.stage.value:<12} {o.action:<8} {o.seconds:6.1f}s")
    print(f"\nscreen time ({time.time() - t0:.1f}s for a {truth.frame_count / truth.fps:.0f}s 720p episode):")
    if result.report is not None:
        print(format_table(result.report))
    ev = evaluate_run(storage, RunLayout(SAMPLE_EP, result.run_id), truth)
    print("\nagainst the sample's ground truth (identities named as a reviewer would):")
    for ident, person in sorted(ev.identity_labels.items()):
        print(f"  {ident} -> {person}")
    for person in sorted(ev.true_s):
        print(f"  {person:<8} true {ev.true_s[person]:6.2f}s  measured {ev.measured_s.get(person, 0.0):6.2f}s")
    print(f"\nartifacts: {storage.uri}/{result.manifests}")
    return 0
