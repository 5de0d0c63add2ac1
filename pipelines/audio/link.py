"""Voices to people, and each person's speaking time.

A voice's evidence for an identity is the seconds it spoke while that identity was the *only* face on
screen (one visible face while a voice speaks is strong evidence; many such moments decide). Named
identities pool their evidence by cast member, and a cast member also gets what the same voice (its
centroid within ``similarity`` of this one's) gathered in the show's other episodes
(:mod:`pipelines.audio.season_voices`), unless this voice sounds clearly more like another cast
member's voice over the season. The voice goes to the candidate with the most evidence, when that
is at least ``min_s`` seconds. A voice that a reviewer assigned, here or (the same voice) in another
episode, goes where the reviewer said. A voice that never matches stays an unnamed speaker.

Per identity and per cast member: ``speaking_s`` (their voices' speech), ``both_s`` (speaking while on
screen) and ``voice_only_s`` (speaking while not on screen).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from .. import intervals as iv
from ..schemas import IdentitySpeech, SpeakerLink, SpeechTurn, VoiceEvidence
from ..stage_settings import AudioConfig, default_of
from .split import SPLIT_MARGIN, cast_profiles

Spans = list[tuple[float, float]]


def voice_spans(turns: list[SpeechTurn]) -> dict[str, Spans]:
    out: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for t in turns:
        out[t.voice_id].append((t.start, t.end))
    return {v: iv.union(s) for v, s in out.items()}


def season_support(
    centroid: Sequence[float] | None, season: Sequence[VoiceEvidence], similarity: float, profiles: tuple[list[str], np.ndarray]
) -> tuple[dict[str, float], str | None]:
    """(seconds per cast member that the same voice gathered in other episodes, the cast member a
    reviewer gave the most similar reviewed voice, if any). ``profiles`` (:func:`cast_profiles`): a
    cast member whose voice this one sounds clearly less like than another's (by ``SPLIT_MARGIN``) gets
    no support, and a reviewer's name is not carried then either, so two similar voices (two espeak-ng
    voices, 0.8-0.9 alike between episodes) do not lend each other their seconds: summed over a season,
    a look-alike voice's many matches outweighed the voice's own (the 30-episode design season,
    segmentation method: voice-to-person 0.921 -> 0.983; windows method 0.976 either way)."""
    support: dict[str, float] = defaultdict(float)
    reviewed, best = None, -1.0
    if centroid is None or not season:
        return {}, None
    vec = np.asarray(centroid, np.float32)
    sims = np.asarray([v.centroid for v in season], np.float32) @ vec
    for voice, sim in zip(season, sims.tolist()):
        if sim < similarity:
            continue
        for cast, seconds in voice.on_screen_s.items():
            support[cast] += seconds
        if voice.reviewed_cast and sim > best:
            reviewed, best = voice.reviewed_cast, sim
    casts, matrix = profiles
    if casts and matrix.shape[1] == len(vec):
        by_cast = dict(zip(casts, (matrix @ vec).tolist()))
        closest = max(by_cast.values())
        if reviewed is not None and reviewed in by_cast and closest - by_cast[reviewed] >= SPLIT_MARGIN:
            reviewed = None
        support = defaultdict(float, {c: s for c, s in support.items() if c not in by_cast or closest - by_cast[c] < SPLIT_MARGIN})
    return dict(support), reviewed


def _decide(evidence: dict[str, float], cast_of: dict[str, str | None], support: dict[str, float], min_s: float) -> tuple[str | None, bool]:
    """(winning candidate: a cast id, or an unnamed identity's id; whether only the season made it win)."""

    def best(with_season: bool) -> str | None:
        score: dict[str, float] = defaultdict(float, support if with_season else {})
        for ident, seconds in evidence.items():
            score[cast_of.get(ident) or ident] += seconds
        winner = max(sorted(score), key=score.__getitem__, default=None)
        return winner if winner is not None and score[winner] >= min_s else None

    final = best(True)
    return final, final != best(False)


def _identity_for(cast: str, evidence: dict[str, float], cast_of: dict[str, str | None], on_screen: dict[str, Spans]) -> str | None:
    """The episode's identity of that cast member: the one alone on screen longest while the voice spoke,
    else the one on screen longest; none when the cast member is not seen."""
    mine = [i for i, c in cast_of.items() if c == cast and i in on_screen]
    if not mine:
        return None
    return max(sorted(mine), key=lambda i: (evidence.get(i, 0.0), iv.total(on_screen[i])))


def link_voices(
    turns: list[SpeechTurn],
    on_screen: dict[str, Spans],
    cast_of: dict[str, str | None],
    manual: dict[str, str],
    min_s: float,
    centroids: dict[str, list[float]] | None = None,
    season: Sequence[VoiceEvidence] = (),
    similarity: float = default_of(AudioConfig, "season_similarity"),
) -> list[SpeakerLink]:
    """``on_screen``: counted seconds per identity; ``manual``: voice -> cast id from this episode's
    corrections; ``centroids``: each voice's unit embedding; ``season``: the show's other episodes' voices."""
    links = []
    profiles = cast_profiles(season)
    alone = {i: iv.subtract(spans, [s for j, other in on_screen.items() if j != i for s in other]) for i, spans in on_screen.items()}
    for voice, spans in sorted(voice_spans(turns).items()):
        evidence = {i: round(iv.total(iv.intersect(spans, a)), 3) for i, a in alone.items()}
        evidence = {i: s for i, s in evidence.items() if s > 0}
        support, reviewed = season_support((centroids or {}).get(voice), season, similarity, profiles)
        ident: str | None
        cast: str | None
        source: str | None
        if voice in manual or reviewed:
            cast, source = (manual[voice], "manual") if voice in manual else (reviewed, "voice_match")
            ident = _identity_for(cast, evidence, cast_of, on_screen) if cast else None
        else:
            winner, by_season = _decide(evidence, cast_of, support, min_s)
            source = None if winner is None else "season" if by_season else "on_screen"
            if winner in on_screen and not cast_of.get(winner):
                ident, cast = winner, None  # an unnamed identity: this episode's evidence only
            else:
                cast = winner
                ident = _identity_for(winner, evidence, cast_of, on_screen) if winner else None
        links.append(
            SpeakerLink(
                voice_id=voice,
                identity_id=ident,
                cast_id=cast,
                source=source,
                evidence_s=evidence.get(ident, 0.0) if ident else 0.0,
                season_s=round(support.get(cast, 0.0), 3) if cast else 0.0,
                candidates=evidence,
                speech_s=round(iv.total(spans), 3),
                intervals=[[round(a, 3), round(b, 3)] for a, b in spans],
            )
        )
    return links


def voice_casts(turns: list[SpeechTurn], labels: list[tuple[list[list[float]], str | None]]) -> dict[str, str]:
    """Each reviewer's voice assignment (in order), re-attached to the current voice that spoke most in its anchor."""
    spans = voice_spans(turns)
    out: dict[str, str] = {}
    for anchor, cast in labels:
        overlap = {v: iv.total(iv.intersect(s, [(a, b) for a, b in anchor])) for v, s in spans.items()}
        best = max(overlap, key=overlap.__getitem__) if overlap else None
        if best is not None and overlap[best] > 0:
            if cast:
                out[best] = cast
            else:
                out.pop(best, None)
    return out


def speech_of(links: list[SpeakerLink], key: str) -> dict[str, Spans]:
    """Speech spans per identity (``key="identity_id"``) or cast member (``"cast_id"``)."""
    out: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for link in links:
        who = getattr(link, key)
        if who:
            out[who] += [(a, b) for a, b in link.intervals]
    return {k: iv.union(v) for k, v in out.items()}


def speaking_times(speech: Spans, on_screen: Spans) -> tuple[float, float, float]:
    """(speaking_s, both_s, voice_only_s)."""
    both = iv.total(iv.intersect(speech, on_screen))
    total = iv.total(speech)
    return round(total, 3), round(both, 3), round(total - both, 3)


def identity_speech(links: list[SpeakerLink], on_screen: dict[str, Spans]) -> list[IdentitySpeech]:
    out = []
    for ident, speech in speech_of(links, "identity_id").items():
        s, b, v = speaking_times(speech, on_screen.get(ident, []))
        out.append(IdentitySpeech(identity_id=ident, speaking_s=s, both_s=b, voice_only_s=v))
    return sorted(out, key=lambda x: -x.speaking_s)
