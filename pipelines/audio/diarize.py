"""Speech turns to voices: window embeddings over the speech, clustered; each moment of speech takes the
voice most of its windows got.

Windows of ``window_s`` every ``hop_s`` cover each speech span (a span shorter than a window is one
window). Embeddings (:mod:`actors.models.voice`) are normalised over the episode, then clustered by
average linkage on cosine similarity (the same FAISS-backed clustering as faces) at ``threshold``.
Voices heard for less than ``min_voice_s`` are folded into their nearest voice. Short windows follow
quick turn-taking better and are noisier; a higher threshold splits one voice more readily. With frame
features, the turns' boundaries are then re-placed every 10 ms (:mod:`pipelines.audio.resegment`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..clustering import cluster_prototypes
from ..stage_settings import AudioConfig
from .resegment import FrameFeatures, interval_index, mfcc_features, resegment

RATE = 16000
VOICE_KNN = 32
"""Neighbours per window searched when clustering voices (exact average linkage needs every pair; 32
covers a turn's windows at the default hop)."""
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


def speech_spans_of(probs: np.ndarray, cfg: AudioConfig) -> list[tuple[float, float]]:
    """Speech intervals from the VAD's chunk probabilities, with the audio stage's hysteresis settings."""
    from actors.models.vad import speech_spans

    return speech_spans(probs, cfg.vad_on, cfg.vad_off, min_silence_s=cfg.min_silence_s)


def diarize_windows(
    spans: list[tuple[float, float]],
    windows: list[tuple[float, float]],
    embeddings: np.ndarray,
    threshold: float,
    min_voice_s: float,
    switch_penalty: float,
    features: FrameFeatures | None = None,
) -> tuple[list[Turn], np.ndarray]:
    """(turns, one unit embedding per voice) from the windows' embeddings; with ``features`` (the
    speech's frames), turn boundaries are re-placed frame by frame."""
    if not windows:
        return [], np.zeros((0, 1), np.float32)
    emb = np.asarray(embeddings, np.float32)
    emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-9)
    labels = cluster_prototypes(emb, set(), threshold, outlier_similarity=-1.0, knn=VOICE_KNN, max_link_gap=None).labels
    labels = _fold_small(labels, emb, windows, min_voice_s)
    order = sorted(set(labels.tolist()), key=lambda k: min(windows[i][0] for i in range(len(windows)) if labels[i] == k))
    relabel = {k: n for n, k in enumerate(order)}
    labels = np.array([relabel[k] for k in labels])
    centroids = np.stack([emb[labels == k].mean(0) for k in range(len(order))])
    centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-9)
    turns = _turns(spans, windows, labels, len(order))
    if features is not None and len(features.times) and len(order) > 1:
        turns = _frame_turns(features, spans, windows, labels, turns, len(order), switch_penalty)
        heard = sorted({t.voice for t in turns})
        if len(heard) < len(order):  # a voice whose every frame went to others is no voice
            keep = {v: n for n, v in enumerate(heard)}
            turns = [Turn(t.start, t.end, keep[t.voice], t.confidence) for t in turns]
            centroids = centroids[heard]
    return turns, centroids


def diarize(
    wave: np.ndarray,
    spans: list[tuple[float, float]],
    embed: Any,
    cfg: AudioConfig,
) -> tuple[list[Turn], np.ndarray]:
    """All in one process, with the audio stage's settings: ``embed(waves) -> (n, d)`` embeds the
    windows of ``wave`` (16 kHz)."""
    windows = speech_windows(spans, cfg.window_s, cfg.hop_s)
    emb = np.asarray(embed([wave[int(a * RATE) : int(b * RATE)] for a, b in windows]), np.float32) if windows else np.zeros((0, 1), np.float32)
    features = mfcc_features(wave, 0.0, spans) if cfg.resegment else None
    return diarize_windows(spans, windows, emb, cfg.voice_threshold, cfg.min_voice_s, cfg.switch_penalty, features)


def _frame_turns(
    features: FrameFeatures,
    spans: list[tuple[float, float]],
    windows: list[tuple[float, float]],
    window_labels: np.ndarray,
    turns: list[Turn],
    voices: int,
    switch_penalty: float,
) -> list[Turn]:
    """The turns re-placed frame by frame. A turn's confidence stays the windows' say: the share of the
    windows over its frames that chose its voice."""
    times = features.times
    ordered = sorted(turns, key=lambda t: t.start)
    held = interval_index(times, [(t.start, t.end) for t in ordered])
    labels = np.where(held >= 0, np.array([t.voice for t in ordered] + [-1])[held], -1)
    labels = resegment(features, spans, labels, voices, switch_penalty)
    starts = np.searchsorted(times, [w[0] for w in windows])
    ends = np.searchsorted(times, [w[1] for w in windows])
    votes = np.zeros((voices, len(times) + 1), np.int32)
    np.add.at(votes, (window_labels, starts), 1)
    np.add.at(votes, (window_labels, ends), -1)
    votes = np.cumsum(votes, axis=1)[:, :-1]
    share = votes / np.maximum(votes.sum(0), 1)
    span_of = interval_index(times, spans)
    inside = np.nonzero(span_of >= 0)[0]
    bounds = np.searchsorted(span_of[inside], np.arange(len(spans) + 1))  # times and spans are both in order
    out: list[Turn] = []
    for k, (a, b) in enumerate(spans):
        idx = inside[bounds[k] : bounds[k + 1]]
        if len(idx) == 0:
            out += [t for t in turns if a <= t.start < b]
            continue
        runs = np.split(idx, np.nonzero(np.diff(labels[idx]) != 0)[0] + 1)
        # one boundary between neighbouring runs, halfway between their frames
        edges = [a] + [round(float(times[r[0]] + times[r[0] - 1]) / 2, 3) for r in runs[1:]] + [b]
        for run, start, end in zip(runs, edges[:-1], edges[1:]):
            voice = int(labels[run[0]])
            if voice >= 0:  # frames no window reached have no voice to give
                out.append(Turn(round(start, 3), round(end, 3), voice, round(float(share[voice, run].mean()), 3)))
    return out


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
