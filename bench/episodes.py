"""Benchmark episodes: rendered once from real face media into a cache folder, with ground truth."""

from __future__ import annotations

from pathlib import Path

from pipelines.sample.episode import GroundTruth, random_episode, render_episode
from pipelines.sample.media import load_sprites

ACCURACY_EPISODES = [  # (seed, seconds)
    (101, 60.0),
    (202, 60.0),
    (303, 60.0),
    (404, 60.0),
]


def bench_dir() -> Path:
    path = Path("data") / "bench"
    path.mkdir(parents=True, exist_ok=True)
    return path


def episode(seed: int, seconds: float, width: int = 1280, height: int = 720) -> tuple[Path, GroundTruth]:
    video = bench_dir() / f"ep_{seed}_{int(seconds)}s_{height}p.mp4"
    truth_path = video.with_suffix(".truth.json")
    if video.is_file() and truth_path.is_file():
        return video, GroundTruth.load(truth_path)
    sprites = load_sprites()
    spec = random_episode(seed, seconds, sorted(sprites), width, height, sprite_counts={k: len(v) for k, v in sprites.items()})
    truth = render_episode(spec, sprites, video)
    truth.save(truth_path)
    return video, truth
