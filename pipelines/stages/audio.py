"""Stage 5: who speaks when. The audio track is decoded (PyAV, 16 kHz mono), speech found by Silero VAD
and embedded by the speaker encoder in Ray tasks over time segments; the driver clusters the windows
into voices (:mod:`pipelines.audio.diarize`), re-places the turns' boundaries every 10 ms from the speech's
MFCCs, which the tasks compute too (:mod:`pipelines.audio.resegment`), and writes ``audio/speech.jsonl``, ``audio/voices.json`` and
one speaker embedding per turn (``speech_turns.npy``: what lets screen time split voices the diarizer
merged, :mod:`pipelines.audio.split`).

The stage is independent of the face stages (its fingerprint is the video and its settings), so a
re-cluster or a facebank change never re-runs it. A video without an audio stream gets a note, not an
error. Linking voices to people happens whenever screen time is computed (:mod:`pipelines.audio.link`),
so human corrections always apply.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import av
import numpy as np
import ray

from ..audio.decode import NoAudio, read_audio
from ..audio.diarize import diarize_windows, speech_windows, turn_embeddings
from ..audio.resegment import FrameFeatures, mfcc_features
from ..registry import SPEECH, SPEECH_EMBEDDINGS, SPEECH_RTTM, VOICES
from ..schemas import SpeechTurn, StageName, Voice, VoicesFile
from ..storage import fetch_to_cache
from .base import RunContext, StageSpec

STAGE = StageName.audio
SPEAKER_MODEL = "resemblyzer-0.1.4"


@functools.lru_cache(maxsize=1)
def _models() -> tuple[Any, Any]:
    """The VAD and the speaker encoder, loaded once per Ray worker process (workers are reused)."""
    from actors.models.vad import SileroVad
    from actors.models.voice_encoder import VoiceEncoder

    return SileroVad(), VoiceEncoder()


# Half a CPU: the run's detached embedder and facebank actors hold a share of the node, and whole-CPU
# tasks then ran one at a time on 2 cores (7.6 s against 3.6 s for a 10-minute episode).
@ray.remote(num_cpus=0.5, max_retries=2)
def analyze_segment(
    video: str, start_s: float, end_s: float, settings: dict[str, Any]
) -> tuple[list[tuple[float, float]], list[tuple[float, float]], np.ndarray, FrameFeatures]:
    """(speech spans, windows, window embeddings, the speech's frame features) of one stretch of the
    audio, in episode seconds."""
    from actors.models.vad import speech_spans

    vad, encoder = _models()
    wave = read_audio(video, start_s, end_s)
    probs = vad.probabilities(wave)
    spans = [(start_s + a, start_s + b) for a, b in speech_spans(probs, settings["vad_on"], settings["vad_off"], min_silence_s=settings["min_silence_s"])]
    windows = speech_windows(spans, settings["window_s"], settings["hop_s"])
    waves = [wave[int((a - start_s) * 16000) : int((b - start_s) * 16000)] for a, b in windows]
    embeddings = encoder.embed(waves) if waves else np.zeros((0, 256), np.float32)
    features = mfcc_features(wave, start_s, spans) if settings["resegment"] and spans else FrameFeatures.empty()
    return spans, windows, embeddings, features


def _video(ctx: RunContext) -> str | None:
    if ctx.video_source:
        return str(fetch_to_cache(ctx.video_source)) if ctx.video_source.startswith("s3://") else ctx.video_source
    meta = ctx.video
    return meta.path if meta is not None and Path(meta.path).is_file() else None


def run(ctx: RunContext) -> dict[str, float]:
    cfg = ctx.config.audio
    layout = ctx.layout
    ctx.progress(STAGE, 0, 1, step="audio")
    video = _video(ctx)
    note = None
    spans: list[tuple[float, float]] = []
    windows: list[tuple[float, float]] = []
    embeddings = np.zeros((0, 256), np.float32)
    features: list[FrameFeatures] = []
    if not cfg.enabled:
        note = "audio analysis is turned off (audio.enabled=false)"
    elif video is None:
        note = "the video is not reachable from here: speech was not analysed"
    else:
        try:
            read_audio(video, 0.0, 0.05)  # no audio stream: a note, not a failure
            duration = ctx.require_video().duration_s
            bounds = [(t, min(duration, t + cfg.segment_s)) for t in np.arange(0.0, duration, cfg.segment_s)]
            settings = cfg.model_dump()
            results = ray.get([analyze_segment.remote(video, float(a), float(b), settings) for a, b in bounds])
            for seg_spans, seg_windows, seg_emb, seg_features in results:
                spans += seg_spans
                windows += seg_windows
                embeddings = np.concatenate([embeddings, seg_emb]) if len(seg_emb) else embeddings
                features.append(seg_features)
        except NoAudio as exc:
            note = str(exc)
        except av.error.FFmpegError as exc:  # an audio track that cannot be decoded: a note, the faces still count
            note = f"the audio track could not be decoded: {exc}"
    ctx.check_canceled()
    frames = FrameFeatures.concat(features) if cfg.resegment else None
    turns, centroids = diarize_windows(spans, windows, embeddings, cfg.voice_threshold, cfg.min_voice_s, cfg.switch_penalty, frames)
    rows = [SpeechTurn(start=t.start, end=t.end, voice_id=f"voice_{t.voice + 1:02d}", confidence=t.confidence) for t in turns]
    voices = []
    for k in range(len(centroids)):
        own = [t for t in turns if t.voice == k]
        voices.append(
            Voice(
                voice_id=f"voice_{k + 1:02d}",
                speech_s=round(sum(t.end - t.start for t in own), 3),
                turns=len(own),
                centroid=[round(float(v), 5) for v in centroids[k]],
            )
        )
    SPEECH_EMBEDDINGS.write(ctx.storage, layout, turn_embeddings(turns, windows, embeddings))  # before the turns: they mark the stage done
    SPEECH_RTTM.write_text(ctx.storage, layout, rttm(layout.ep_id, rows))  # what diarization tools read
    SPEECH.write(ctx.storage, layout, rows)
    speech_s = round(sum(b - a for a, b in spans), 3)
    VOICES.write(
        ctx.storage,
        layout,
        VoicesFile(ep_id=layout.ep_id, run_id=layout.run_id, speaker_model=SPEAKER_MODEL, has_audio=note is None, note=note, speech_s=speech_s, voices=voices),
    )
    ctx.progress(STAGE, 1, 1, step="audio")
    return {"speech_s": speech_s, "voices": len(voices), "turns": len(rows), "has_audio": int(note is None)}


def rttm(file_id: str, turns: list[SpeechTurn]) -> str:
    """The turns in RTTM, the format diarization tools read and score (NIST's md-eval, pyannote.metrics,
    dscore): ``SPEAKER file 1 start duration <NA> <NA> speaker <NA> <NA>``, one line per turn."""
    return "".join(f"SPEAKER {file_id} 1 {t.start:.3f} {t.end - t.start:.3f} <NA> <NA> {t.voice_id} <NA> <NA>\n" for t in turns)


def fingerprint_inputs(ctx: RunContext) -> list:
    return [ctx.video.content_id if ctx.video else None, SPEAKER_MODEL]


SPEC = StageSpec(
    name=STAGE,
    version=4,
    outputs=(SPEECH, VOICES, SPEECH_RTTM),
    run=run,
    fingerprint_inputs=fingerprint_inputs,
    execution_only=frozenset({"segment_s"}),
    independent=True,
)
