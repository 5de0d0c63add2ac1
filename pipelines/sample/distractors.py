"""Distractors for benchmark episodes: what a detector may take for someone on screen, but a viewer
would not count. Drawn into the shot's background, so they pan with it and never move on their own.

- ``smiley``: a drawn face (disc, two eyes, a mouth): face-like structure, no face;
- ``poster``: a real face inside a picture frame on the wall (a frame within the frame);
- ``crowd``: a row of tiny faces far away.
"""

from __future__ import annotations

import random

import cv2
import numpy as np

from .episode import Appearance, Distractor, ShotSpec, _blend, _prepare
from .media import FaceSprite

Box = tuple[float, float, float, float]


def random_distractors(seed: int, people: list[str], height: int = 720) -> list[Distractor]:
    """One to three distractors for a shot, away from the middle band where the people are."""
    rng = random.Random(seed)
    scale = height / 720
    out = []
    for _ in range(rng.choice([1, 1, 2, 3])):
        kind = rng.choice(["smiley", "poster", "crowd"])
        x = rng.choice([rng.uniform(0.05, 0.15), rng.uniform(0.85, 0.95)])
        if kind == "crowd":
            out.append(Distractor("crowd", 0.5, rng.uniform(0.88, 0.93), rng.uniform(18, 30) * scale, rng.sample(people, min(len(people), rng.randint(6, 10)))))
        elif kind == "poster":
            out.append(Distractor("poster", x, rng.uniform(0.15, 0.25), rng.uniform(30, 60) * scale, [rng.choice(people)]))
        else:
            out.append(Distractor("smiley", x, rng.uniform(0.15, 0.3), rng.uniform(50, 120) * scale))
    return out


def _smiley(bg: np.ndarray, cx: float, cy: float, size: float) -> Box:
    r = size / 2
    cv2.circle(bg, (int(cx), int(cy)), int(r), (60, 200, 235), -1, cv2.LINE_AA)
    for dx in (-0.35, 0.35):
        cv2.circle(bg, (int(cx + dx * r), int(cy - 0.25 * r)), max(2, int(0.12 * r)), (30, 30, 30), -1, cv2.LINE_AA)
    cv2.circle(bg, (int(cx), int(cy + 0.05 * r)), max(1, int(0.06 * r)), (40, 90, 160), -1, cv2.LINE_AA)
    cv2.ellipse(bg, (int(cx), int(cy + 0.3 * r)), (int(0.45 * r), int(0.2 * r)), 0, 0, 180, (30, 30, 30), max(1, int(0.08 * r)), cv2.LINE_AA)
    return (cx - r, cy - r, cx + r, cy + r)


def _poster(bg: np.ndarray, cx: float, cy: float, size: float, person: str, sprites: dict[str, list[FaceSprite]]) -> Box:
    placed = _prepare(Appearance(person, size, (0, 0), (0, 0)), sprites)
    h, w = placed.image.shape[:2]
    x1, y1 = int(cx - 0.6 * w), int(cy - 0.6 * h)
    x2, y2 = int(cx + 0.6 * w), int(cy + 0.6 * h)
    cv2.rectangle(bg, (x1, y1), (x2, y2), (200, 200, 190), -1)
    _blend(bg, placed, cx, cy)
    cv2.rectangle(bg, (x1, y1), (x2, y2), (30, 50, 80), max(3, int(0.08 * size)))
    fw, fh = placed.face_box[2] - placed.face_box[0], placed.face_box[3] - placed.face_box[1]
    return (cx - fw / 2, cy - fh / 2, cx + fw / 2, cy + fh / 2)


def draw_distractors(bg: np.ndarray, shot: ShotSpec, sprites: dict[str, list[FaceSprite]], width: int) -> list[tuple[str, Box]]:
    """Draw the shot's distractors into its background; their face boxes (in the shot's first frame).
    Bind ``sprites`` and ``width`` with ``functools.partial`` for ``render_episode(decorate=...)``."""
    h = bg.shape[0]
    boxes: list[tuple[str, Box]] = []
    for d in shot.distractors:
        cx, cy = d.x * width, d.y * h
        if d.kind == "smiley":
            boxes.append(("smiley", _smiley(bg, cx, cy, d.size_px)))
        elif d.kind == "poster":
            boxes.append(("poster", _poster(bg, cx, cy, d.size_px, d.people[0], sprites)))
        else:
            step = width * 0.8 / max(1, len(d.people))
            for k, person in enumerate(d.people):
                x = width * 0.1 + (k + 0.5) * step
                placed = _prepare(Appearance(person, d.size_px, (0, 0), (0, 0)), sprites)
                _blend(bg, placed, x, cy)
                fw, fh = placed.face_box[2] - placed.face_box[0], placed.face_box[3] - placed.face_box[1]
                boxes.append(("crowd", (x - fw / 2, cy - fh / 2, x + fw / 2, cy + fh / 2)))
    return boxes
