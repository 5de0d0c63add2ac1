"""New looks of a face photo, for episodes whose faces must differ from the reference photos.

Each look combines a head turn (a perspective warp that foreshortens one side of the face), a lighting
change (gain, gamma, colour cast), and a loss of detail (blur, or a trip through a low resolution), as
the same person looks across scenes of a show. Looks are deterministic per (person, index).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .media import FaceSprite


@dataclass(frozen=True)
class Look:
    yaw: float = 0.0  # foreshortening of one side, -0.2..0.2 (negative: turned to the left)
    roll_deg: float = 0.0
    gain: float = 1.0
    gamma: float = 1.0
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)  # B, G, R multipliers
    blur: float = 0.0
    low_res: float = 1.0  # < 1: shrunk to this scale and back


LOOKS = (
    Look(yaw=-0.12, gain=0.72, gamma=1.25),
    Look(yaw=0.12, tint=(0.85, 0.97, 1.12), low_res=0.45),
    Look(roll_deg=12.0, gain=1.2, blur=1.3),
    Look(yaw=0.08, roll_deg=-8.0, gamma=0.8, tint=(1.1, 1.0, 0.9)),
)


def _warp(sprite: FaceSprite, look: Look) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float, float]]:
    h, w = sprite.image.shape[:2]
    d = abs(look.yaw) * h
    squeeze = 1.0 - abs(look.yaw) * 0.8
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    if look.yaw < 0:  # left side farther away: shorter
        dst = np.array([[0, d], [w * squeeze, 0], [w * squeeze, h], [0, h - d]], np.float32)
    else:
        dst = np.array([[0, 0], [w * squeeze, d], [w * squeeze, h - d], [0, h]], np.float32)
    matrix = cv2.getPerspectiveTransform(src, dst)
    if look.roll_deg:
        rot = np.vstack([cv2.getRotationMatrix2D((w / 2, h / 2), look.roll_deg, 1.0), [0, 0, 1]])
        matrix = rot @ matrix
    image = cv2.warpPerspective(sprite.image, matrix, (w, h), borderMode=cv2.BORDER_REFLECT)
    alpha = cv2.warpPerspective(sprite.alpha, matrix, (w, h), borderValue=0)
    x1, y1, x2, y2 = sprite.face_box
    corners = cv2.perspectiveTransform(np.array([[[x1, y1], [x2, y1], [x2, y2], [x1, y2]]], np.float32), matrix)[0]
    box = (float(corners[:, 0].min()), float(corners[:, 1].min()), float(corners[:, 0].max()), float(corners[:, 1].max()))
    return image, alpha, box


def new_look(sprite: FaceSprite, look: Look) -> FaceSprite:
    image, alpha, box = _warp(sprite, look)
    x = image.astype(np.float32) / 255.0
    x = np.clip(x * look.gain, 0, 1) ** look.gamma
    x = np.clip(x * np.array(look.tint, np.float32), 0, 1)
    out = (x * 255).astype(np.uint8)
    if look.low_res < 1:
        h, w = out.shape[:2]
        small = cv2.resize(out, (max(8, int(w * look.low_res)), max(8, int(h * look.low_res))), interpolation=cv2.INTER_AREA)
        out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if look.blur:
        out = cv2.GaussianBlur(out, (0, 0), look.blur)
    return FaceSprite(sprite.person, out, alpha.astype(np.float32), box)


def episode_looks(sprites: dict[str, list[FaceSprite]], reference_sprite: int = 0) -> dict[str, list[FaceSprite]]:
    """Per person, sprites that differ from the reference photo: their other real photos when they
    have some (obama), else new looks of their one photo."""
    out: dict[str, list[FaceSprite]] = {}
    for person, own in sprites.items():
        others = [s for k, s in enumerate(own) if k != reference_sprite]
        out[person] = others if others else [new_look(own[reference_sprite], look) for look in LOOKS]
    return out
