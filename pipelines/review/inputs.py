"""A run's screen-time inputs, with the human corrections replayed onto the current identities.

The screentime stage, the review API and the evaluator read a run through these two functions.
"""

from __future__ import annotations

from ..artifacts import read_jsonl, read_model
from ..audio.season_voices import season_voices
from ..config import resolve_config
from ..corrections import Resolved, load_corrections, resolve
from ..ids import parse_ep_id
from ..layout import RunLayout
from ..naming import apply_names, identity_pairs
from ..registry import CLUSTER_CENTROIDS, DETECTIONS, FACES, IDENTITIES, IDENTITY_NAMES, SHOTS, SPEECH, SPEECH_EMBEDDINGS, TRACK_METRICS, TRACKS, VIDEO, VOICES
from ..schemas import (
    Assignments,
    ClusterCentroidsFile,
    NamingFile,
    SpeechTurn,
    VoicesFile,
)
from ..screentime import ScreentimeInputs
from ..stage_settings import AudioConfig
from ..storage import Storage


def resolved_inputs(storage: Storage, layout: RunLayout, with_detections: bool, audio: AudioConfig | None = None) -> tuple[ScreentimeInputs, Resolved]:
    """Screen-time inputs with the human corrections replayed onto the current identities."""
    inputs = load_inputs(storage, layout, Assignments(ep_id=layout.ep_id, run_id=layout.run_id), with_detections, audio)
    centroids_key = CLUSTER_CENTROIDS.key(layout)
    centroids = read_model(storage, centroids_key, ClusterCentroidsFile) if storage.exists(centroids_key) else None
    resolved = resolve(load_corrections(storage, layout), inputs.identities, inputs.tracks, centroids)
    naming_key = IDENTITY_NAMES.key(layout)
    if storage.exists(naming_key):
        naming_file = read_model(storage, naming_key, NamingFile)
        namings = {n.identity_id: n for n in naming_file.identities}
        resolved.auto_threshold = naming_file.auto_threshold
        identity_of = {t: i.identity_id for i in resolved.identities.identities for t in i.track_ids}
        apply_names(resolved.assignments, namings, identity_pairs(inputs.identities.co_occurring_tracks, identity_of))
        resolved.naming = namings
    inputs.identities = resolved.identities
    inputs.assignments = resolved.assignments
    inputs.naming = resolved.naming
    inputs.voice_labels = resolved.voice_labels
    return inputs, resolved


def load_inputs(storage: Storage, layout: RunLayout, assignments: Assignments, with_detections: bool, audio: AudioConfig | None = None) -> ScreentimeInputs:
    """Everything the screen-time computation reads from a run's artifacts (and, when it has speech,
    the show's other episodes' voices). ``audio``: the voice-linking settings (a run's own; by default
    the environment's and profile's, as every reader of a run resolves them)."""
    audio = audio or resolve_config(None, None).config.audio
    meta = VIDEO.read(storage, layout)
    metrics = TRACK_METRICS.read(storage, layout)
    speech_key, voices_key = SPEECH.key(layout), VOICES.key(layout)
    voices = read_model(storage, voices_key, VoicesFile) if storage.exists(voices_key) else None
    # Speech not measured (no audio track, audio turned off): None, so speaking time is absent, not 0.0.
    speech = read_jsonl(storage, speech_key, SpeechTurn) if storage.exists(speech_key) and (voices is None or voices.has_audio) else None
    voices = voices if speech else None
    return ScreentimeInputs(
        ep_id=layout.ep_id,
        run_id=layout.run_id,
        fps=meta.fps,
        stride=metrics.stride,
        duration_s=meta.duration_s,
        shots=SHOTS.read(storage, layout).shots,
        tracks=TRACKS.read(storage, layout),
        identities=IDENTITIES.read(storage, layout),
        assignments=assignments,
        faces=FACES.read(storage, layout),
        detections=DETECTIONS.read(storage, layout) if with_detections else None,
        speech=speech,
        voice_centroids={v.voice_id: v.centroid for v in voices.voices} if voices else {},
        speaker_model=voices.speaker_model if voices else None,
        speech_embeddings=SPEECH_EMBEDDINGS.read(storage, layout) if voices and SPEECH_EMBEDDINGS.exists(storage, layout) else None,
        season_voices=season_voices(storage, parse_ep_id(layout.ep_id).show, layout.ep_id, voices.speaker_model) if voices else [],
        voice_link_min_s=audio.link_min_s,
        voice_similarity=audio.season_similarity,
    )
