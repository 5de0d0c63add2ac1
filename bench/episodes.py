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


DISTRACTOR_EPISODES = [(505, 45.0), (606, 45.0)]


def distractor_episode(seed: int, seconds: float, width: int = 1280, height: int = 720) -> tuple[Path, GroundTruth]:
    """A benchmark episode whose shots also hold distractors (drawn faces, faces in picture frames,
    crowds of tiny faces): what the pipeline must not count as anyone on screen."""
    import functools

    from pipelines.sample.distractors import draw_distractors, random_distractors

    video = bench_dir() / f"ep_{seed}_{int(seconds)}s_{height}p_distractors.mp4"
    truth_path = video.with_suffix(".truth.json")
    if video.is_file() and truth_path.is_file():
        return video, GroundTruth.load(truth_path)
    sprites = load_sprites()
    people = sorted(sprites)
    spec = random_episode(seed, seconds, people, width, height, sprite_counts={k: len(v) for k, v in sprites.items()})
    for k, shot in enumerate(spec.shots):
        shot.distractors = random_distractors(seed * 100 + k, people, height)
    truth = render_episode(spec, sprites, video, decorate=functools.partial(draw_distractors, sprites=sprites, width=width))
    truth.save(truth_path)
    return video, truth


def loop_video(source: Path, target: Path, times: int) -> Path:
    """``source`` played ``times`` over, by stream copy (no re-encoding: an hour of 1080p is written
    in seconds). For throughput at lengths that would take far longer to render; the faces repeat,
    so its ground truth is the source's, repeated."""
    import av

    if target.is_file():
        return target
    tmp = target.with_name(f".{target.name}.tmp.mp4")
    with av.open(str(source)) as src:
        stream = src.streams.video[0]
        packets = [p for p in src.demux(stream) if p.size]
        span = max(p.pts + p.duration for p in packets) - min(p.pts for p in packets)
        with av.open(str(tmp), "w") as out:
            out_stream = out.add_stream_from_template(stream)
            for k in range(times):
                for packet in packets:
                    packet.stream = out_stream
                    packet.pts += span if k else 0
                    packet.dts += span if k else 0
                    out.mux(packet)
    tmp.replace(target)
    return target
