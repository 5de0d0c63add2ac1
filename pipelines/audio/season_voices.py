"""A show's voices across its episodes: each episode leaves its voices (what they sound like, who was
alone on screen while they spoke, who a reviewer said they are) under ``shows/{show}/voices/``, and
every other episode of the show links its own voices with that evidence too.

Why: within one episode a voice can be undecidable. A cast member who speaks mostly off screen, over
other people's reaction shots, gives a listener more seconds alone on screen than themselves; across
a season the same voice is heard over their own face far more often than over any one listener's.
On the speaking benchmark's 30-episode season this took voice-to-person from 0.82 to 0.96.

Only facts of each episode are written (never a link the season made), so no episode's evidence
comes back to it, and the result does not depend on the order episodes were processed in. The
evidence is keyed by cast member, so it flows through names: the facebank's automatic ones too (a
wrongly named identity gives its voices' seconds to the wrong person in the other episodes as well).
One file per episode: the run that computed screen time last writes it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from pydantic import ValidationError

from ..artifacts import read_model, write_model
from ..ids import parse_ep_id
from ..layout import episode_voices_key, voices_prefix
from ..schemas import EpisodeVoices, ScreentimeReport, SpeakerLink, VoiceEvidence
from ..storage import Storage


def share_episode(storage: Storage, report: ScreentimeReport, centroids: dict[str, list[float]], speaker_model: str | None) -> None:
    """Write (atomically) what the episode tells the rest of its show, after its screen time was computed:
    by the screentime stage, and after every correction (a reviewer's voice assignment or a name changes
    what its voices are evidence for). An unchanged file is not rewritten, so no other episode goes stale.
    ``centroids``: the episode's voices as screen time counted them (``screentime.effective_speech``);
    ``speaker_model``: what embedded them (None: the episode had no speech analysis, nothing to share)."""
    if speaker_model:
        voices = episode_voices(report, centroids, speaker_model)
        key = episode_voices_key(voices.show_id, voices.ep_id)
        try:
            unchanged = read_model(storage, key, EpisodeVoices) == voices
        except (FileNotFoundError, ValueError, ValidationError):
            unchanged = False
        if not unchanged:
            write_model(storage, key, voices)


def episode_voices(report: ScreentimeReport, centroids: dict[str, list[float]], speaker_model: str) -> EpisodeVoices:
    """What the episode tells the rest of its show, from its screen-time report."""
    cast_of = {i.identity_id: i.cast_id for i in report.identities}
    return EpisodeVoices(
        show_id=parse_ep_id(report.ep_id).show,
        ep_id=report.ep_id,
        run_id=report.run_id,
        speaker_model=speaker_model,
        voices=voice_evidence(report.speakers, cast_of, centroids),
    )


def voice_evidence(links: Sequence[SpeakerLink], cast_of: Mapping[str, str | None], centroids: Mapping[str, list[float]]) -> list[VoiceEvidence]:
    """Each linked voice as evidence for the other episodes: its centroid, its seconds alone on screen
    per *named* cast member (its candidates' identities, through ``cast_of``), a reviewer's cast member."""
    out = []
    for link in links:
        if link.voice_id not in centroids:
            continue
        by_cast: dict[str, float] = {}
        for ident, seconds in link.candidates.items():
            cast = cast_of.get(ident)
            if cast:
                by_cast[cast] = round(by_cast.get(cast, 0.0) + seconds, 3)
        reviewed = link.cast_id if link.source == "manual" else None
        out.append(
            VoiceEvidence(voice_id=link.voice_id, centroid=centroids[link.voice_id], speech_s=link.speech_s, on_screen_s=by_cast, reviewed_cast=reviewed)
        )
    return out


def _listing(storage: Storage, show_id: str, except_ep: str) -> dict[str, str]:
    """The other episodes' voice files -> their version (one listing)."""
    prefix = voices_prefix(show_id)
    return {f"{prefix}/{n}": v for n, v in sorted(storage.versions(prefix).items()) if n.endswith(".json") and n != f"{except_ep}.json"}


_CACHE: dict[tuple[str, str], tuple[str, EpisodeVoices]] = {}
_CACHE_LIMIT = 4096  # episodes' files held parsed: a few KB each


def season_voices(storage: Storage, show_id: str, except_ep: str, speaker_model: str) -> list[VoiceEvidence]:
    """Every voice of the show's other episodes embedded by ``speaker_model``. Files are read only when
    their version changed since this process last read them: a review page of a long show lists the
    folder once instead of reading every episode's file on every request."""
    out: list[VoiceEvidence] = []
    for key, version in _listing(storage, show_id, except_ep).items():
        cached = _CACHE.get((storage.uri, key))
        if cached is not None and cached[0] == version:
            episode = cached[1]
        else:
            try:
                episode = read_model(storage, key, EpisodeVoices)
            except (FileNotFoundError, ValueError, ValidationError):
                continue  # removed meanwhile
            if len(_CACHE) >= _CACHE_LIMIT:
                _CACHE.clear()
            _CACHE[(storage.uri, key)] = (version, episode)
        if episode.speaker_model == speaker_model:
            out += episode.voices
    return out


def season_version(storage: Storage, show_id: str, except_ep: str) -> str:
    """Changes whenever another episode's voices change (what an episode's screen time depends on)."""
    return hashlib.sha1(repr(sorted(_listing(storage, show_id, except_ep).items())).encode()).hexdigest()[:16]
