"""Voices the diarizer merged, split by the voices the show already knows.

Two similar voices can be one cluster in an episode: the two male flite voices of the speaking
benchmark are 0.72-0.77 alike turn by turn, as alike as pyannote's two real speakers, so no voice
threshold separates them without splitting one real speaker's own turns (0.77-0.92 alike). The
show's other episodes know each cast member's voice far better than one turn does: each voice there
counts for the cast member who was alone on screen longest while it spoke (or whom a reviewer named),
and a turn here is claimed by the cast member whose voice it matches at ``similarity`` or more, by
``SPLIT_MARGIN`` over the next. A voice whose turns are claimed by two or more cast members, each for
at least ``min_s`` seconds, is split: the turns of each claimant after the first become a voice of
their own. Turns nobody claims stay where they were. Nothing is split without a season.

On the speaking benchmark's 30-episode design season every one of 264 turns was claimed by the right
person, and exactly the two merged voices were split.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from ..schemas import SpeechTurn, VoiceEvidence

SPLIT_MARGIN = 0.05
"""How much better a turn must match its claimant's voice than the next cast member's. Larger splits
less often (only clearly different voices), smaller lets a turn between two voices decide."""
MIN_TURN_S = 0.5
"""Turns shorter than this claim nothing: one or two windows are too noisy to tell similar voices apart."""
MIN_PROFILE_S = 2.0
"""Seconds alone on screen a voice of another episode needs to stand for a cast member."""


def cast_profiles(season: Sequence[VoiceEvidence]) -> tuple[list[str], np.ndarray]:
    """(cast ids, one unit voice per cast member): the show's other episodes' voices, each counted for the
    cast member a reviewer named or who was alone on screen longest while it spoke, weighted by those seconds."""
    sums: dict[str, np.ndarray] = {}
    for voice in season:
        cast, weight = voice.reviewed_cast, voice.speech_s
        if cast is None and voice.on_screen_s:
            cast = max(sorted(voice.on_screen_s), key=voice.on_screen_s.__getitem__)
            weight = voice.on_screen_s[cast]
            if weight < MIN_PROFILE_S:
                continue
        if cast is None:
            continue
        vec = weight * np.asarray(voice.centroid, np.float32)
        sums[cast] = sums[cast] + vec if cast in sums else vec
    casts = sorted(sums)
    if not casts:
        return [], np.zeros((0, 1), np.float32)
    profiles = np.stack([sums[c] for c in casts])
    return casts, profiles / np.maximum(np.linalg.norm(profiles, axis=1, keepdims=True), 1e-9)


def _centroid(rows: np.ndarray, weights: list[float]) -> list[float]:
    v = np.asarray(weights, np.float32) @ rows
    return [round(float(x), 5) for x in v / max(float(np.linalg.norm(v)), 1e-9)]


def split_merged_voices(
    turns: list[SpeechTurn],
    embeddings: np.ndarray | None,
    centroids: dict[str, list[float]],
    season: Sequence[VoiceEvidence],
    similarity: float,
    min_s: float,
) -> tuple[list[SpeechTurn], dict[str, list[float]]]:
    """(turns, centroids) with merged voices split; ``embeddings``: one row per turn, or None (no split)."""
    casts, profiles = cast_profiles(season)
    if embeddings is None or len(embeddings) != len(turns) or len(casts) < 2 or profiles.shape[1] != embeddings.shape[1]:
        return turns, centroids
    sims = embeddings @ profiles.T
    order = np.argsort(-sims, axis=1)
    by_voice: dict[str, list[int]] = defaultdict(list)
    for k, t in enumerate(turns):
        by_voice[t.voice_id].append(k)
    numbers = [int(m.group(1)) for v in by_voice if (m := re.fullmatch(r"voice_(\d+)", v))]
    next_number = max(numbers, default=0) + 1
    new_voice: dict[int, str] = {}
    out_centroids = dict(centroids)
    for voice, rows in sorted(by_voice.items()):
        claims: dict[str, list[int]] = defaultdict(list)
        for k in rows:
            best, second = order[k, 0], order[k, 1]
            if turns[k].end - turns[k].start >= MIN_TURN_S and sims[k, best] >= similarity and sims[k, best] - sims[k, second] >= SPLIT_MARGIN:
                claims[casts[best]].append(k)
        seconds = {c: sum(turns[k].end - turns[k].start for k in ks) for c, ks in claims.items()}
        claimants = sorted((c for c in claims if seconds[c] >= min_s), key=lambda c: -seconds[c])
        if len(claimants) < 2:
            continue
        for cast in claimants[1:]:
            name = f"voice_{next_number:02d}"
            next_number += 1
            for k in claims[cast]:
                new_voice[k] = name
            out_centroids[name] = _centroid(embeddings[claims[cast]], [turns[k].end - turns[k].start for k in claims[cast]])
        kept = [k for k in rows if k not in new_voice]
        out_centroids[voice] = _centroid(embeddings[kept], [turns[k].end - turns[k].start for k in kept])
    if not new_voice:
        return turns, centroids
    return [t.model_copy(update={"voice_id": new_voice[k]}) if k in new_voice else t for k, t in enumerate(turns)], out_centroids
