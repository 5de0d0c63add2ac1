"""Voices to people, and each person's speaking time.

A voice is linked to the identity that was the *only* face on screen for the most of its speech, when
that is at least ``min_s`` seconds (one visible face while a voice speaks is strong evidence; many
such moments decide). Through the identity it takes its cast member (a human's name or the facebank's).
A reviewer's voice assignment (a correction anchored by the voice's speech spans) wins. A voice that
never matches stays an unnamed speaker.

Per identity and per cast member: ``speaking_s`` (their voices' speech), ``both_s`` (speaking while on
screen) and ``voice_only_s`` (speaking while not on screen).
"""

from __future__ import annotations

from collections import defaultdict

from .. import intervals as iv
from ..schemas import IdentitySpeech, SpeakerLink, SpeechTurn

Spans = list[tuple[float, float]]


def voice_spans(turns: list[SpeechTurn]) -> dict[str, Spans]:
    out: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for t in turns:
        out[t.voice_id].append((t.start, t.end))
    return {v: iv.union(s) for v, s in out.items()}


def link_voices(
    turns: list[SpeechTurn], on_screen: dict[str, Spans], cast_of: dict[str, str | None], manual: dict[str, str], min_s: float
) -> list[SpeakerLink]:
    """``on_screen``: counted seconds per identity; ``manual``: voice -> cast id from corrections."""
    links = []
    alone = {i: iv.subtract(spans, [s for j, other in on_screen.items() if j != i for s in other]) for i, spans in on_screen.items()}
    for voice, spans in sorted(voice_spans(turns).items()):
        evidence = {i: iv.total(iv.intersect(spans, a)) for i, a in alone.items()}
        best = max(evidence, key=evidence.__getitem__) if evidence else None
        ident = best if best is not None and evidence[best] >= min_s else None
        source = "on_screen" if ident else None
        cast = cast_of.get(ident) if ident else None
        if voice in manual:
            cast, source = manual[voice], "manual"
            ident = ident if ident and cast_of.get(ident) == cast else None
        links.append(
            SpeakerLink(
                voice_id=voice,
                identity_id=ident,
                cast_id=cast,
                source=source,
                evidence_s=round(evidence.get(best, 0.0), 3) if best else 0.0,
                speech_s=round(iv.total(spans), 3),
                intervals=[[round(a, 3), round(b, 3)] for a, b in spans],
            )
        )
    return links


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
