"""Speech turns to voices: window embeddings over the speech, clustered; each moment of speech takes the
voice most of its windows got.

Windows of ``window_s`` every ``hop_s`` cover each speech span (a span shorter than a window is one
window). Embeddings (:mod:`actors.models.voice`) are normalised over the episode, then clustered by
average linkage on cosine similarity (the same FAISS-backed clustering as faces) at ``threshold``.
Voices heard for less than ``min_voice_s`` are folded into their nearest voice. Short windows follow
quick turn-taking better and are noisier; a higher threshold splits one voice more readily.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..clustering import cluster_prototypes

RATE = 16000
GRID_S = 0.05


@dataclass
class Turn:
    start: float
    end: float
    voice: int
    confidence: float


def speech_windows(spans: list[tuple[float, float]], window_s: float, hop_s: float) -> list[tuple[float, float]]:
    """Windows of ``window_s`` every ``hop_s`` over each speech span (a shorter span is one window)."""
    out = []
    for a, b in spans:
        if b - a <= window_s:
            out.append((a, b))
            continue
        t = a
        while t + window_s < b:
            out.append((t, t + window_s))
            t += hop_s
        out.append((b - window_s, b))
    return out


def diarize_windows(
    spans: list[tuple[float, float]], windows: list[tuple[float, float]], embeddings: np.ndarray, threshold: float, min_voice_s: float
) -> tuple[list[Turn], np.ndarray]:
    """(turns, one unit embedding per voice) from the windows' embeddings."""
    if not windows:
        return [], np.zeros((0, 1), np.float32)
    emb = np.asarray(embeddings, np.float32)
    emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-9)
    labels = cluster_prototypes(emb, set(), threshold, outlier_similarity=-1.0).labels
    labels = _fold_small(labels, emb, windows, min_voice_s)
    order = sorted(set(labels.tolist()), key=lambda k: min(windows[i][0] for i in range(len(windows)) if labels[i] == k))
    relabel = {k: n for n, k in enumerate(order)}
    labels = np.array([relabel[k] for k in labels])
    centroids = np.stack([emb[labels == k].mean(0) for k in range(len(order))])
    centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-9)
    return _turns(spans, windows, labels, len(order)), centroids


def diarize(
    wave: np.ndarray,
    spans: list[tuple[float, float]],
    embed: Any,
    threshold: float = 0.68,
    window_s: float = 1.5,
    hop_s: float = 0.25,
    min_voice_s: float = 1.0,
) -> tuple[list[Turn], np.ndarray]:
    """All in one process: ``embed(waves) -> (n, d)`` embeds the windows of ``wave`` (16 kHz)."""
    windows = speech_windows(spans, window_s, hop_s)
    emb = np.asarray(embed([wave[int(a * RATE) : int(b * RATE)] for a, b in windows]), np.float32) if windows else np.zeros((0, 1), np.float32)
    return diarize_windows(spans, windows, emb, threshold, min_voice_s)


def turn_embeddings(turns: list[Turn], windows: list[tuple[float, float]], embeddings: np.ndarray) -> np.ndarray:
    """One unit embedding per turn: the mean of its windows' embeddings, each weighted by how much of the
    window lies inside the turn (a window across a change of speaker counts for both, in proportion). A
    turn no window overlaps gets zeros."""
    out = np.zeros((len(turns), embeddings.shape[1] if len(embeddings) else 1), np.float32)
    if not turns or not windows:
        return out
    emb = np.asarray(embeddings, np.float32)
    emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-9)
    starts, ends = np.array([w[0] for w in windows]), np.array([w[1] for w in windows])
    for k, t in enumerate(turns):
        weight = np.clip(np.minimum(ends, t.end) - np.maximum(starts, t.start), 0.0, None)
        if weight.sum() > 0:
            v = weight @ emb
            out[k] = v / max(float(np.linalg.norm(v)), 1e-9)
    return out


def _fold_small(labels: np.ndarray, emb: np.ndarray, wins: list[tuple[float, float]], min_voice_s: float) -> np.ndarray:
    labels = labels.copy()
    while True:
        ids = sorted(set(labels.tolist()))
        if len(ids) < 2:
            return labels
        heard = {k: sum(wins[i][1] - wins[i][0] for i in range(len(wins)) if labels[i] == k) for k in ids}
        small = min(ids, key=lambda k: heard[k])
        if heard[small] >= min_voice_s:
            return labels
        cents = {k: emb[labels == k].mean(0) for k in ids}
        nearest = max((k for k in ids if k != small), key=lambda k: float(cents[k] @ cents[small]))
        labels[labels == small] = nearest


def _turns(spans: list[tuple[float, float]], wins: list[tuple[float, float]], labels: np.ndarray, n: int) -> list[Turn]:
    turns: list[Turn] = []
    for a, b in spans:
        grid = np.arange(a, b, GRID_S)
        votes = np.zeros((len(grid), n), np.float32)
        for (wa, wb), k in zip(wins, labels):
            if wb <= a or wa >= b:
                continue
            votes[(grid >= wa) & (grid < wb), k] += 1
        best = votes.argmax(1)
        conf = votes.max(1) / np.maximum(votes.sum(1), 1)
        start = 0
        for i in range(1, len(grid) + 1):
            if i == len(grid) or best[i] != best[start]:
                end = b if i == len(grid) else float(grid[i])
                turns.append(Turn(round(float(grid[start]), 3), round(end, 3), int(best[start]), round(float(conf[start:i].mean()), 3)))
                start = i
    return turns
