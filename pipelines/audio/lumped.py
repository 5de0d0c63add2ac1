"""Frames where the segmentation model heard two people as one, re-placed from MFCCs.

On voices it finds alike (two synthetic voices of one engine, say) the segmentation model can hear two
people in one 10 s window as one local speaker. That local speaker's embedding is then a blend of both:
it bridges their clusters (the two people become one voice), or it goes to one of them and takes every
frame of the other in that window along. A blend shows in its pieces: each 1.5 s piece sounds like
whoever spoke in it, so some piece sits far from their mean (``LocalSpeakers.agreement``). Local
speakers whose agreement is under ``piece_agreement`` are kept out of the clustering
(:func:`pipelines.audio.overlap.voices_of`), and the frames they speak in that have one voice are
re-placed here, frame by frame, by per-voice MFCC models trained on every frame with one voice
(:func:`pipelines.audio.resegment.resegment`, at ``switch_penalty``). Frames of agreeing local speakers
keep the segmentation's voice: on real voices it is the better judge (pyannote's sample: re-placing
every frame took DER from 6.3% to 10.4%).

``piece_agreement`` (cosine) measured on the design set (quick exchanges 0-7; pyannote's real sample; float model):
0.85 -> DER 12.5% / 6.28%; 0.875 -> 11.9% / 6.32%; 0.9 -> 10.3% / 7.31%; the method without it 19.5% / 6.28%.
Higher treats more local speakers as blends: more of the synthetic lumping undone, and more real
speakers' frames (whose pieces vary more, with mood and loudness) second-guessed by MFCCs.
"""

from __future__ import annotations

import numpy as np

from .frames import frame_spans, nearest_frame
from .resegment import FrameFeatures, resegment


def replace_lumped(active: np.ndarray, suspect: np.ndarray, features: FrameFeatures, switch_penalty: float) -> np.ndarray:
    """``active`` (frames x voices, from :func:`pipelines.audio.overlap.reconstruct`) with its
    ``suspect`` frames (where disagreeing local speakers speak) that have one voice re-placed from
    ``features`` (the speech's MFCCs); overlapped frames and the rest unchanged."""
    if active.shape[1] < 2 or not len(features.times):
        return active
    heard = active.sum(1)
    if not (suspect & (heard == 1)).any():
        return active
    grid = np.clip(nearest_frame(features.times), 0, len(active) - 1)
    single = heard[grid] == 1
    labels = np.where(single, active[grid].argmax(1), -1)
    movable = single & suspect[grid]
    relabelled = resegment(features, frame_spans(heard > 0), labels, active.shape[1], switch_penalty, movable=movable)
    votes = np.zeros(active.shape, np.int32)  # each segmentation frame: the voice most of its MFCC frames got
    np.add.at(votes, (grid[movable], relabelled[movable]), 1)
    moved = np.nonzero(votes.sum(1) > 0)[0]
    out = active.copy()
    out[moved] = False
    out[moved, votes[moved].argmax(1)] = True
    return out
