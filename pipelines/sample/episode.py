"""Render scripted episodes from real face sprites, with exact ground truth.

A person is on screen in a frame when the centre of their face box is inside the frame (half the face
or more visible). Ground truth seconds = frames on screen / fps. Shots change with hard cuts; within a
shot faces move along straight paths (entering or leaving through an edge when the path starts or ends
outside the frame), with optional blur and a lighting ramp.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from .media import FaceSprite


@dataclass
class Appearance:
    person: str
    face_px: float
    start: tuple[float, float]  # face centre at t0, as fractions of width/height (may be outside 0..1)
    end: tuple[float, float]
    t0: float = 0.0
    t1: float | None = None  # seconds within the shot; None = to the end
    sprite: int = 0
    blur: float = 0.0


@dataclass
class Distractor:
    """Something a viewer would not count, drawn into a shot's background (it pans with it): ``smiley`` (a
    face-like drawing), ``poster`` (a face in a picture frame), ``crowd`` (a row of tiny faces)."""

    kind: str
    x: float  # centre, fraction of the frame width
    y: float
    size_px: float  # face height (crowd: each face's)
    people: list[str] = field(default_factory=list)


@dataclass
class ShotSpec:
    duration_s: float
    appearances: list[Appearance] = field(default_factory=list)
    seed: int = 0
    pan_px_s: float = 0.0
    gain: tuple[float, float] = (1.0, 1.0)
    distractors: list[Distractor] = field(default_factory=list)


@dataclass
class EpisodeSpec:
    width: int
    height: int
    fps: int
    shots: list[ShotSpec]


@dataclass
class GroundTruth:
    fps: float
    frame_count: int
    shot_starts: list[int]
    seconds: dict[str, float]
    faces: list[tuple[int, str, float, float, float, float]]  # frame, person, box
    distractors: list[tuple[int, int, str, float, float, float, float, float]] = field(default_factory=list)
    """(first frame, end frame, kind, box x1 y1 x2 y2 in the shot's first frame, pan px/s)."""

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, path: Path) -> GroundTruth:
        data = json.loads(path.read_text())
        data["faces"] = [tuple(f) for f in data["faces"]]
        data["distractors"] = [tuple(d) for d in data.get("distractors", [])]
        return cls(**data)


def _background(spec: EpisodeSpec, shot: ShotSpec) -> np.ndarray:
    rng = np.random.default_rng(shot.seed)
    extra = int(abs(shot.pan_px_s) * shot.duration_s) + 2
    w, h = spec.width + extra, spec.height
    base = rng.integers(30, 220, size=(5, 8, 3)).astype(np.uint8)
    bg = cv2.resize(base, (w, h), interpolation=cv2.INTER_CUBIC)
    for _ in range(12):
        color = tuple(int(c) for c in rng.integers(0, 255, 3))
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        if rng.random() < 0.5:
            cv2.rectangle(bg, (x, y), (x + int(rng.integers(20, 200)), y + int(rng.integers(20, 200))), color, -1)
        else:
            cv2.line(bg, (x, y), (int(rng.integers(0, w)), int(rng.integers(0, h))), color, int(rng.integers(2, 12)))
    noise = rng.normal(0, 6, bg.shape)
    return np.clip(bg.astype(np.float32) + noise, 0, 255).astype(np.uint8)


@dataclass
class _Placed:
    appearance: Appearance
    image: np.ndarray
    alpha: np.ndarray
    face_box: tuple[float, float, float, float]


def _prepare(app: Appearance, sprites: dict[str, list[FaceSprite]]) -> _Placed:
    sprite = sprites[app.person][app.sprite % len(sprites[app.person])]
    fx1, fy1, fx2, fy2 = sprite.face_box
    scale = app.face_px / (fy2 - fy1)
    size = (max(2, round(sprite.image.shape[1] * scale)), max(2, round(sprite.image.shape[0] * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    image = cv2.resize(sprite.image, size, interpolation=interp)
    if app.blur > 0:
        image = cv2.GaussianBlur(image, (0, 0), app.blur)
    alpha = cv2.resize(sprite.alpha, size, interpolation=cv2.INTER_LINEAR)[..., None]
    return _Placed(app, image, alpha, (fx1 * scale, fy1 * scale, fx2 * scale, fy2 * scale))


def _blend(frame: np.ndarray, placed: _Placed, cx: float, cy: float) -> None:
    fx1, fy1, fx2, fy2 = placed.face_box
    ox = int(round(cx - (fx1 + fx2) / 2))
    oy = int(round(cy - (fy1 + fy2) / 2))
    h, w = placed.image.shape[:2]
    x1, y1, x2, y2 = max(0, ox), max(0, oy), min(frame.shape[1], ox + w), min(frame.shape[0], oy + h)
    if x2 <= x1 or y2 <= y1:
        return
    src = placed.image[y1 - oy : y2 - oy, x1 - ox : x2 - ox].astype(np.float32)
    a = placed.alpha[y1 - oy : y2 - oy, x1 - ox : x2 - ox]
    roi = frame[y1:y2, x1:x2].astype(np.float32)
    frame[y1:y2, x1:x2] = (src * a + roi * (1 - a)).astype(np.uint8)


Decorate = Callable[[np.ndarray, ShotSpec], list[tuple[str, tuple[float, float, float, float]]]]
"""Draws a shot's distractors into its background; returns (kind, face box) of each."""


def render_episode(spec: EpisodeSpec, sprites: dict[str, list[FaceSprite]], path: Path, decorate: Decorate | None = None) -> GroundTruth:
    """Write ``spec`` as an H.264 MP4 at ``path`` and return its ground truth (``decorate`` draws the
    shots' distractors: :func:`pipelines.sample.distractors.draw_distractors`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.mp4")
    fps = spec.fps
    visible: dict[str, set[int]] = {}
    faces: list[tuple[int, str, float, float, float, float]] = []
    shot_starts: list[int] = []
    distractors: list[tuple[int, int, str, float, float, float, float, float]] = []
    frame_idx = 0
    with av.open(str(tmp), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(fps, 1))
        stream.width, stream.height, stream.pix_fmt = spec.width, spec.height, "yuv420p"
        stream.options = {"crf": "20", "preset": "veryfast", "g": str(2 * fps)}
        for shot in spec.shots:
            shot_starts.append(frame_idx)
            bg = _background(spec, shot)
            if shot.distractors and decorate is not None:
                n_frames = int(round(shot.duration_s * fps))
                for kind, box in decorate(bg, shot):
                    distractors.append((frame_idx, frame_idx + n_frames, kind, *box, shot.pan_px_s))
            placed = [_prepare(a, sprites) for a in shot.appearances]
            n = int(round(shot.duration_s * fps))
            for k in range(n):
                t = k / fps
                x0 = int(abs(shot.pan_px_s) * t) if shot.pan_px_s >= 0 else int(abs(shot.pan_px_s) * (shot.duration_s - t))
                frame = bg[:, x0 : x0 + spec.width].copy()
                for p in placed:
                    app = p.appearance
                    t1 = shot.duration_s if app.t1 is None else app.t1
                    if not app.t0 <= t < t1:
                        continue
                    u = (t - app.t0) / max(1e-9, t1 - app.t0)
                    cx = (app.start[0] + (app.end[0] - app.start[0]) * u) * spec.width
                    cy = (app.start[1] + (app.end[1] - app.start[1]) * u) * spec.height
                    _blend(frame, p, cx, cy)
                    fw, fh = p.face_box[2] - p.face_box[0], p.face_box[3] - p.face_box[1]
                    if 0 <= cx < spec.width and 0 <= cy < spec.height:
                        visible.setdefault(app.person, set()).add(frame_idx)
                        faces.append((frame_idx, app.person, cx - fw / 2, cy - fh / 2, cx + fw / 2, cy + fh / 2))
                g = shot.gain[0] + (shot.gain[1] - shot.gain[0]) * (k / max(1, n - 1))
                if g != 1.0:
                    frame = cv2.convertScaleAbs(frame, alpha=g, beta=0)
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")):
                    out.mux(packet)
                frame_idx += 1
        for packet in stream.encode():
            out.mux(packet)
    tmp.replace(path)
    return GroundTruth(
        fps=float(fps),
        frame_count=frame_idx,
        shot_starts=shot_starts,
        seconds={p: len(f) / fps for p, f in sorted(visible.items())},
        faces=faces,
        distractors=distractors,
    )


def random_episode(
    seed: int, duration_s: float, people: list[str], width: int = 1280, height: int = 720, fps: int = 24, sprite_counts: dict[str, int] | None = None
) -> EpisodeSpec:
    """A plausible TV-like episode: shots of 2-8 s with 0-3 faces of 40-200 px (at 720p, scaled with
    height), some entering or leaving mid-shot, moving, blurred or under a lighting change."""
    rng = random.Random(seed)
    sprite_counts = sprite_counts or {}
    shots: list[ShotSpec] = []
    total = 0.0
    scale = height / 720
    while total < duration_s - 0.5:
        d = min(round(rng.uniform(2.0, 8.0), 2), round(duration_s - total, 2))
        if d < 1.0:
            break
        n = rng.choices([0, 1, 2, 3], weights=[1, 4, 3, 2])[0]
        cast = rng.sample(people, n)
        slots = rng.sample([0.2, 0.5, 0.8], n)
        apps = []
        for person, slot in zip(cast, sorted(slots)):
            px = rng.uniform(40, 200) * scale
            if n == 3:
                px = min(px, 150 * scale)
            y = rng.uniform(0.35, 0.6)
            drift = rng.uniform(-0.06, 0.06)
            start, end = (slot, y), (slot + drift, y + rng.uniform(-0.03, 0.03))
            t0, t1 = 0.0, None
            roll = rng.random()
            if roll < 0.15 and d > 3:  # enters through the nearest side edge
                side = -0.15 if slot < 0.5 else 1.15
                t0 = round(rng.uniform(0.5, d / 2), 2)
                start = (side, y)
                end = (slot, y)
            elif roll < 0.3 and d > 3:  # leaves through the nearest side edge
                side = -0.15 if slot < 0.5 else 1.15
                t1 = round(rng.uniform(d / 2, d - 0.3), 2)
                end = (side, y)
            apps.append(
                Appearance(
                    person=person,
                    face_px=round(px, 1),
                    start=start,
                    end=end,
                    t0=t0,
                    t1=t1,
                    sprite=rng.randrange(sprite_counts.get(person, 1)),
                    blur=rng.choice([0, 0, 0, 0.8, 1.5]),
                )
            )
        gain = (1.0, 1.0) if rng.random() < 0.7 else (rng.uniform(0.6, 1.0), rng.uniform(1.0, 1.35))
        shots.append(ShotSpec(d, apps, seed=rng.randrange(1 << 30), pan_px_s=rng.choice([0, 0, 20, -30]), gain=gain))
        total += d
    return EpisodeSpec(width, height, fps, shots)


def sample_episode_spec(width: int = 1280, height: int = 720) -> EpisodeSpec:
    """The bundled sample: 30 s, four people, one of them (obama) in three different photos."""
    s = height / 720
    A = Appearance
    return EpisodeSpec(
        width,
        height,
        24,
        [
            ShotSpec(6.0, [A("obama", 170 * s, (0.3, 0.45), (0.34, 0.45)), A("t1_a", 140 * s, (0.72, 0.5), (0.7, 0.5))], seed=1),
            ShotSpec(5.0, [A("t1_b", 120 * s, (1.15, 0.5), (0.6, 0.5), t0=1.0)], seed=2, pan_px_s=20),
            ShotSpec(4.0, [], seed=3),
            ShotSpec(
                6.0,
                [
                    A("obama", 90 * s, (0.25, 0.5), (0.3, 0.5), sprite=1),
                    A("biden", 110 * s, (0.5, 0.45), (0.5, 0.45)),
                    A("t1_a", 60 * s, (0.8, 0.55), (-0.15, 0.55), t1=4.5),
                ],
                seed=4,
                gain=(0.7, 1.2),
            ),
            ShotSpec(5.0, [A("biden", 200 * s, (0.5, 0.5), (0.55, 0.5), blur=1.0)], seed=5),
            ShotSpec(4.0, [A("obama", 130 * s, (0.4, 0.5), (0.45, 0.5), sprite=2), A("t1_b", 50 * s, (0.8, 0.4), (0.8, 0.4))], seed=6),
        ],
    )


def test_episode_spec() -> EpisodeSpec:
    """A short 640x360 episode for the test suite: 14 s, 3 people, 4 shots (one empty), an exit, a re-entry."""
    A = Appearance
    return EpisodeSpec(
        640,
        360,
        24,
        [
            ShotSpec(4.0, [A("obama", 90, (0.3, 0.45), (0.33, 0.45)), A("t1_a", 80, (0.72, 0.5), (0.7, 0.5))], seed=11),
            ShotSpec(3.0, [A("t1_b", 70, (1.15, 0.5), (0.6, 0.5), t0=0.5)], seed=12),
            ShotSpec(3.0, [A("obama", 60, (0.3, 0.5), (0.35, 0.5), sprite=1), A("t1_a", 70, (0.75, 0.5), (-0.15, 0.5), t1=2.5)], seed=13),
            ShotSpec(4.0, [], seed=14),
        ],
    )
