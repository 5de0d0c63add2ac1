"""A cheap appearance cue for tracking: the colour of the aligned face chip (skin, hair at the edges).

The detector actors compute it beside each chip (in parallel, from the JPEG they store, so a segment
written before the column existed gets the very same values from its chips); the tracker reads it.

Hue x saturation histogram of the chip (16 x 4 bins), square-rooted and unit-normalised, so the dot
product of two descriptors is their Bhattacharyya coefficient (1: same colours). It costs a JPEG decode
and a histogram per detection (~0.2 ms). It cannot tell two people of similar colouring apart (the
embedder does that later); it stops a track from jumping onto a visibly different face that passes
in front of its own.
"""

from __future__ import annotations

import cv2
import numpy as np

HUE_BINS = 16
SAT_BINS = 4
DIM = HUE_BINS * SAT_BINS


def chip_descriptor(chip_jpeg: bytes) -> np.ndarray:
    chip = cv2.imdecode(np.frombuffer(chip_jpeg, np.uint8), cv2.IMREAD_COLOR)
    if chip is None:
        return np.zeros(DIM, np.float32)
    hsv = cv2.cvtColor(chip, cv2.COLOR_BGR2HSV)
    hist = cv2.calcHist([hsv], [0, 1], None, [HUE_BINS, SAT_BINS], [0, 180, 0, 256]).reshape(-1).astype(np.float32)
    hist = np.sqrt(hist / max(float(hist.sum()), 1e-9))
    return hist / max(float(np.linalg.norm(hist)), 1e-9)
