"""Speech turns with overlap, from pyannote's segmentation model (:mod:`actors.models.segmentation`),
the way pyannote's own pipeline builds them, without torch:

1. **Local speakers.** 10 s windows every ``segmentation_step_s`` each say, frame by frame (17 ms),
   which of up to three local speakers talk, two at once included.
2. **Embeddings.** Each local speaker heard for ``min_speech_s`` gets a speaker embedding: the mean of
   consecutive 1.5 s pieces of the audio where it speaks alone (where it only overlaps, of all its frames),
   and an *agreement*: how close its least typical piece is to that mean.
3. **Voices.** The embeddings of the agreeing local speakers are clustered (average linkage at
   ``voice_threshold``, two local speakers of one window never one voice); the others join their
   nearest voice; voices heard for less than ``min_voice_s`` join their nearest voice.
4. **Turns.** Every frame takes as many voices as its windows, on average, say speak (the speaker
   count, rounded), the voices with the most activity there; overlapped stretches give every voice
   that speaks a turn of its own, so each is credited. Frames of local speakers that disagree are
   then re-placed from MFCCs (:mod:`pipelines.audio.lumped`).

Knobs: a shorter step sees every moment from more windows (better speaker counts and boundaries) at
proportional cost: on pyannote's real sample 1.0 s and 2.5 s both gave DER 6.4%, 5 s gave 13.2%.
``piece_agreement``: see :mod:`pipelines.audio.lumped`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from actors.models.segmentation import FRAME_SIZE, FRAME_STEP, FRAMES, LOCAL_SPEAKERS, RATE, WINDOW

from ..clustering import cluster_prototypes
from ..stage_settings import AudioConfig
from .diarize import VOICE_KNN, Turn, _fold_small
from .frames import frame_spans, frame_time, frames_span, nearest_frame
from .lumped import replace_lumped
from .resegment import FrameFeatures, _runs, mfcc_features

PIECE_S = 1.5
"""Length of the pieces a local speaker's audio is embedded in (the encoder was trained on 1.6 s), one
after the other; a remainder shorter than a piece is left out. Each moment is embedded once per window,
and the windows (``segmentation_step_s`` apart) already hear it four times over: pieces overlapping by
half, as resemblyzer embeds an utterance, cost 26% more of the audio stage's CPU for the same DER
(pyannote's sample 6.28% either way; quick exchanges 22.7% against 22.1%, 22 of 24 the same). Evenly
spread pieces that also cover the remainder were worse there (24.5%, 5 of 24 worse, none better)."""


SILENT_RMS = 1e-5
"""Frames quieter than this (RMS, -100 dBFS: under the dither of 16-bit audio) are digital silence and
never speech. The segmentation model, trained on recordings that never fall silent, hears speech on
through such gaps: in a synthetic episode it bridged a 1.4 s gap of silence between two lines of one
speaker, and the windows padded past the end of the audio are silence too. A recording's own
background (pyannote's sample: RMS 2e-4 at its quietest) is far above it."""


@dataclass
class LocalSpeakers:
    """What a stretch of audio says, window by window; the driver joins the stretches' (:meth:`concat`)."""

    window_starts: np.ndarray  # (n,) episode samples
    soft: np.ndarray  # (n, FRAMES, 3) float16: probability each local speaker speaks
    hard: np.ndarray  # (n, FRAMES, 3) uint8: the most likely class's speakers
    keys: np.ndarray  # (m, 2): (window row, local speaker) of each embedding
    embeddings: np.ndarray  # (m, D) unit speaker embeddings
    spans: np.ndarray  # (m, 2) episode seconds from the first to the last frame the local speaker speaks
    agreement: np.ndarray  # (m,) cosine of the local speaker's least typical piece to its embedding (1.0: one piece)
    features: FrameFeatures  # MFCCs of the stretch's speech (each moment once: the stretch's own seconds)

    @staticmethod
    def concat(parts: list[LocalSpeakers]) -> LocalSpeakers:
        parts = [p for p in parts if len(p.window_starts)]
        if not parts:
            empty = np.zeros((0, FRAMES, LOCAL_SPEAKERS), np.uint8)
            return LocalSpeakers(
                np.zeros(0, np.int64),
                empty.astype(np.float16),
                empty,
                np.zeros((0, 2), np.int64),
                np.zeros((0, 256), np.float32),
                np.zeros((0, 2)),
                np.zeros(0, np.float32),
                FrameFeatures.empty(),
            )
        offsets = np.cumsum([0] + [len(p.window_starts) for p in parts[:-1]])
        return LocalSpeakers(
            np.concatenate([p.window_starts for p in parts]),
            np.concatenate([p.soft for p in parts]),
            np.concatenate([p.hard for p in parts]),
            np.concatenate([p.keys + [off, 0] for p, off in zip(parts, offsets)]),
            np.concatenate([p.embeddings for p in parts]),
            np.concatenate([p.spans for p in parts]),
            np.concatenate([p.agreement for p in parts]),
            FrameFeatures.concat([p.features for p in parts]),
        )


def local_speakers(wave: np.ndarray, start_s: float, end_s: float, model: Any, embed: Any, step_s: float, min_speech_s: float) -> LocalSpeakers:
    """The windows starting in ``[start_s, end_s)`` every ``step_s``; ``wave`` (16 kHz mono) starts at
    ``start_s`` and runs on to 10 s past ``end_s`` where the audio has it (the last windows are padded).
    The MFCCs cover the speech in ``[start_s, end_s)`` only, so stretches side by side hold each moment
    once (the last stretch ends where the audio does)."""
    offset = int(round(start_s * RATE))
    starts = np.arange(0, max(int(round((end_s - start_s) * RATE)), 1), int(round(step_s * RATE)), dtype=np.int64)
    windows = np.zeros((len(starts), WINDOW), np.float32)
    for k, s in enumerate(starts):
        piece = wave[s : s + WINDOW]
        windows[k, : len(piece)] = piece
    soft, hard = model.local_speakers(windows)
    silent = _silent_frames(wave, starts)
    soft[silent], hard[silent] = 0, 0
    size = int(PIECE_S * RATE)
    keys, pieces_of, spans = [], [], []
    for w, s in enumerate(starts):
        alone = hard[w].sum(1) == 1
        for k in range(LOCAL_SPEAKERS):
            active = hard[w, :, k] > 0
            use = active & alone if (active & alone).sum() * FRAME_STEP / RATE >= min_speech_s else active
            if use.sum() * FRAME_STEP / RATE < min_speech_s:
                continue
            audio = _frames_audio(wave, int(s), np.nonzero(use)[0])
            keys.append((w, k))
            pieces_of.append([audio[i : i + size] for i in range(0, max(1, len(audio) - size) + 1, size)])
            frames = np.nonzero(active)[0]
            spans.append((frame_time(frames[0], offset + int(s)), frame_time(frames[-1], offset + int(s))))
    vectors = embed_by_length(embed, [piece for pieces in pieces_of for piece in pieces])
    embeddings, agreement, first = [], [], 0
    for pieces in pieces_of:  # each local speaker: the mean of its pieces' rows
        rows = vectors[first : first + len(pieces)]
        vector = rows.mean(0)
        vector = vector / max(float(np.linalg.norm(vector)), 1e-9)
        embeddings.append(vector)
        units = rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-9)
        agreement.append(float((units @ vector).min()) if len(rows) > 1 else 1.0)
        first += len(pieces)
    dim = len(embeddings[0]) if embeddings else 256
    return LocalSpeakers(
        starts + offset,
        soft.astype(np.float16),
        hard.astype(np.uint8),
        np.asarray(keys, np.int64).reshape(-1, 2),
        np.asarray(embeddings, np.float32).reshape(-1, dim),
        np.asarray(spans, np.float64).reshape(-1, 2),
        np.asarray(agreement, np.float32),
        mfcc_features(wave, start_s, _speech_spans(starts + offset, hard, start_s, end_s)),
    )


def _silent_frames(wave: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """(n, FRAMES) bool: output frames of the windows starting at ``starts`` (samples of ``wave``, zero
    past its end) whose audio is digital silence (RMS under ``SILENT_RMS``). One running sum of the
    stretch's squares serves every window: per window, it cost 1.2 s of CPU on a 10-minute episode."""
    frame_starts = starts[:, None] + np.arange(FRAMES)[None, :] * FRAME_STEP
    squares = np.zeros(max(int(frame_starts.max()) + FRAME_SIZE, len(wave)) + 1)
    squares[1 : len(wave) + 1] = np.cumsum(np.square(wave, dtype=np.float64))
    squares[len(wave) + 1 :] = squares[len(wave)]
    energy = squares[frame_starts + FRAME_SIZE] - squares[frame_starts]
    return np.sqrt(np.maximum(energy, 0.0) / FRAME_SIZE) < SILENT_RMS


def _speech_spans(window_starts: np.ndarray, hard: np.ndarray, start_s: float, end_s: float) -> list[tuple[float, float]]:
    """Episode seconds where any window hears anyone, clipped to ``[start_s, end_s)``."""
    if not len(window_starts):
        return []
    grid = np.zeros(int((window_starts.max() - window_starts.min()) // FRAME_STEP) + FRAMES, bool)
    first = window_starts.min()
    for w, s in enumerate(window_starts):
        off = int((s - first) // FRAME_STEP)
        grid[off : off + FRAMES] |= hard[w].any(1)
    clipped = [(max(a, start_s), min(b, end_s)) for a, b in frame_spans(grid, int(first))]
    return [(a, b) for a, b in clipped if b > a]


def embed_by_length(embed: Any, pieces: list[np.ndarray]) -> np.ndarray:
    """``embed(pieces)``, in one call per length: the encoder pads a batch's shorter sequences, which
    would change their embeddings. A stretch's pieces together cost 40% less than a call per local
    speaker (most have one or two pieces, and one alone costs twice as much as one in a batch of 4):
    the audio stage's CPU on the 10-minute episode went from 19.7 to 15.5 s. Batches capped at 8 or
    32 measured slower than none."""
    out: np.ndarray | None = None
    by_length: dict[int, list[int]] = {}
    for i, piece in enumerate(pieces):
        by_length.setdefault(len(piece), []).append(i)
    for rows in by_length.values():
        vectors = np.asarray(embed([pieces[i] for i in rows]), np.float32)
        if out is None:
            out = np.zeros((len(pieces), vectors.shape[1]), np.float32)
        out[rows] = vectors
    return out if out is not None else np.zeros((0, 256), np.float32)


def _frames_audio(wave: np.ndarray, window_start: int, frames: np.ndarray) -> np.ndarray:
    """The samples under ``frames`` of a window, runs of consecutive frames joined."""
    runs = np.split(frames, np.nonzero(np.diff(frames) > 1)[0] + 1)
    return np.concatenate([wave[window_start + r[0] * FRAME_STEP : window_start + r[-1] * FRAME_STEP + FRAME_SIZE] for r in runs])


def merge_twins(local: LocalSpeakers, iou_min: float) -> LocalSpeakers:
    """``local`` with each pair of one window's local speakers that speak in mostly the same frames
    (intersection over union of their frames at least ``iou_min``) made one. The segmentation model
    sometimes hears one synthetic voice as two people talking at once (six pairs in the 30 episodes
    the season linking was designed on, IoU 0.40-0.89), and two local speakers of one window can never
    be one voice, so that person would become two voices and an extra speaker everywhere they talk.
    People who really talk over each other share far fewer frames (pyannote's real sample: IoU at most
    0.30). The longer of the two keeps both's frames and the mean of their embeddings."""
    hard, soft, keys = local.hard.copy(), local.soft.copy(), local.keys.copy()
    embeddings, agreement, spans = local.embeddings.copy(), local.agreement.copy(), local.spans.copy()
    row_of = {(int(w), int(k)): i for i, (w, k) in enumerate(keys)}
    kept_rows = np.ones(len(keys), bool)
    for w in range(len(hard)):
        for a in range(LOCAL_SPEAKERS):
            for b in range(a + 1, LOCAL_SPEAKERS):
                first, second = hard[w, :, a] > 0, hard[w, :, b] > 0
                union = int((first | second).sum())
                if union == 0 or (first & second).sum() / union < iou_min:
                    continue
                keep, fold = (a, b) if first.sum() >= second.sum() else (b, a)
                hard[w, :, keep] |= hard[w, :, fold]
                soft[w, :, keep] = np.maximum(soft[w, :, keep], soft[w, :, fold])
                hard[w, :, fold], soft[w, :, fold] = 0, 0
                kept, folded = row_of.get((w, keep)), row_of.pop((w, fold), None)
                if folded is None:
                    continue
                if kept is None:  # only the shorter one was heard long enough to be embedded: it stands for both
                    keys[folded] = (w, keep)
                    row_of[(w, keep)] = folded
                    continue
                mean = embeddings[kept] + embeddings[folded]
                embeddings[kept] = mean / max(float(np.linalg.norm(mean)), 1e-9)
                agreement[kept] = min(agreement[kept], agreement[folded])
                spans[kept] = (min(spans[kept][0], spans[folded][0]), max(spans[kept][1], spans[folded][1]))
                kept_rows[folded] = False
    return LocalSpeakers(local.window_starts, soft, hard, keys[kept_rows], embeddings[kept_rows], spans[kept_rows], agreement[kept_rows], local.features)


def voices_of(local: LocalSpeakers, threshold: float, min_voice_s: float, agreement_min: float = -1.0) -> np.ndarray:
    """The voice of each embedded local speaker: those whose pieces agree (``agreement >= agreement_min``)
    clustered, never two of one window together; the others each join the nearest voice its window has
    not taken (the nearest of all when every one is taken); small voices folded. When fewer than two
    agree, all are clustered."""
    n = len(local.keys)
    if n == 0:
        return np.zeros(0, np.int64)
    rows = local.keys[:, 0]
    agreeing = np.nonzero(local.agreement >= agreement_min)[0]
    if len(agreeing) < 2:
        agreeing = np.arange(n)
    position = {int(i): p for p, i in enumerate(agreeing)}
    cannot = {
        (position[int(i)], position[int(j)])
        for w in np.unique(rows[agreeing])
        for i in agreeing[rows[agreeing] == w]
        for j in agreeing[rows[agreeing] == w]
        if i < j
    }
    clustered = cluster_prototypes(local.embeddings[agreeing], cannot, threshold, outlier_similarity=-1.0, knn=VOICE_KNN, max_link_gap=None).labels
    labels = np.full(n, -1, np.int64)
    labels[agreeing] = clustered
    centroids = np.stack([local.embeddings[agreeing][clustered == k].mean(0) for k in range(int(clustered.max()) + 1)])
    for i in np.nonzero(labels < 0)[0]:
        taken = set(labels[rows == rows[i]].tolist())
        ranked = np.argsort(-(centroids @ local.embeddings[i]))
        labels[i] = next((int(k) for k in ranked if int(k) not in taken), int(ranked[0]))
    labels = _fold_small(labels, local.embeddings, [(float(a), float(b)) for a, b in local.spans], min_voice_s)
    _, dense = np.unique(labels, return_inverse=True)
    return dense.astype(np.int64)


def reconstruct(local: LocalSpeakers, voices: np.ndarray, duration_s: float) -> tuple[np.ndarray, np.ndarray]:
    """(active (frames, voices) bool, activity score) on the episode's frame grid: each frame's speaker
    count (the windows' hard counts, averaged, rounded) picks its most active voices."""
    n_voices = int(voices.max()) + 1 if len(voices) else 0
    total = max(int(duration_s * RATE - FRAME_SIZE) // FRAME_STEP + 1, 1)
    offsets = (local.window_starts // FRAME_STEP).astype(np.int64)
    size = max(total, int(offsets.max()) + FRAMES if len(offsets) else 0)  # the last windows run past the end (padded)
    score = np.zeros((size, max(n_voices, 1)), np.float32)
    cover = np.zeros(size, np.float32)
    count = np.zeros(size, np.float32)
    for w, off in enumerate(offsets):
        cover[off : off + FRAMES] += 1
        count[off : off + FRAMES] += local.hard[w].sum(1)
    for (w, k), v in zip(local.keys, voices):
        score[offsets[w] : offsets[w] + FRAMES, v] += local.soft[w, :, k].astype(np.float32)
    cover = np.maximum(cover, 1)
    score /= cover[:, None]
    speakers = np.minimum(np.round(count / cover).astype(np.int64), n_voices)
    ranked = np.argsort(-score, axis=1)
    active = np.zeros(score.shape, bool)
    for rank in range(min(LOCAL_SPEAKERS, n_voices)):
        frames = np.nonzero(speakers > rank)[0]
        active[frames, ranked[frames, rank]] = True
    return active[:total, :n_voices], score[:total, :n_voices]


def turns_of(active: np.ndarray, score: np.ndarray) -> list[Turn]:
    """One turn per run of frames a voice is active in, each frame owning half a step either side of its centre."""
    turns = []
    for v in range(active.shape[1]):
        for a, b in _runs(active[:, v]):
            turns.append(Turn(*frames_span(a, b), v, round(float(score[a:b, v].mean()), 3)))
    return sorted(turns, key=lambda t: (t.start, t.voice))


def frames_of(local: LocalSpeakers, which: np.ndarray, total: int) -> np.ndarray:
    """(total,) bool: episode frames where any of the local speakers ``which`` (a mask over ``local.keys``) speaks."""
    out = np.zeros(total, bool)
    offsets = (local.window_starts // FRAME_STEP).astype(np.int64)
    for w, k in local.keys[which]:
        frames = np.nonzero(local.hard[w, :, k])[0] + offsets[w]
        out[frames[frames < total]] = True
    return out


def diarize_local(local: LocalSpeakers, duration_s: float, cfg: AudioConfig) -> tuple[list[Turn], np.ndarray, np.ndarray]:
    """(turns, overlapping where two voices speak; one unit centroid per voice; one unit embedding per
    turn), with the audio stage's settings ``cfg``."""
    local = merge_twins(local, cfg.twin_overlap)
    voices = voices_of(local, cfg.voice_threshold, cfg.min_voice_s, cfg.piece_agreement)
    active, score = reconstruct(local, voices, duration_s)
    active = replace_lumped(active, frames_of(local, local.agreement < cfg.piece_agreement, len(active)), local.features, cfg.switch_penalty)
    turns = turns_of(active, score)
    dim = local.embeddings.shape[1]
    centroids = np.zeros((active.shape[1], dim), np.float32)
    for v in range(active.shape[1]):
        mean = local.embeddings[voices == v].mean(0)
        centroids[v] = mean / max(float(np.linalg.norm(mean)), 1e-9)
    return turns, centroids, _turn_embeddings(local, voices, turns, centroids)


def _turn_embeddings(local: LocalSpeakers, voices: np.ndarray, turns: list[Turn], centroids: np.ndarray) -> np.ndarray:
    """One unit embedding per turn: its voice's local speakers, each weighted by how much it speaks in
    the turn's frames. Two people a clustering merged into one voice keep turns that look like each of
    them, which is what lets the season split them (:mod:`pipelines.audio.split`)."""
    offsets = (local.window_starts // FRAME_STEP).astype(np.int64)
    out = np.zeros((len(turns), centroids.shape[1]), np.float32)
    for i, t in enumerate(turns):
        first, last = int(nearest_frame(t.start)), int(nearest_frame(t.end))
        vector = np.zeros(centroids.shape[1], np.float64)
        for j in np.nonzero(voices == t.voice)[0]:
            w, k = local.keys[j]
            a, b = max(first - offsets[w], 0), min(last - offsets[w] + 1, FRAMES)
            if b > a:
                vector += float(local.soft[w, a:b, k].astype(np.float32).sum()) * local.embeddings[j]
        vector = vector if np.linalg.norm(vector) > 0 else centroids[t.voice]
        out[i] = vector / max(float(np.linalg.norm(vector)), 1e-9)
    return out


def diarize_with_overlap(wave: np.ndarray, model: Any, embed: Any, cfg: AudioConfig) -> tuple[list[Turn], np.ndarray]:
    """All in one process, with the audio stage's settings: (turns, centroids)."""
    duration = len(wave) / RATE
    local = local_speakers(wave, 0.0, duration, model, embed, cfg.segmentation_step_s, cfg.min_speech_s)
    turns, centroids, _ = diarize_local(local, duration, cfg)
    return turns, centroids
