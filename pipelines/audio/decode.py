"""An episode's audio track, decoded once with PyAV (no ffmpeg binary) to 16 kHz mono float32."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

RATE = 16000


class NoAudio(ValueError):
    """The video has no audio stream (a note, not a failure)."""


def read_audio(path: str | Path, start_s: float = 0.0, end_s: float | None = None) -> np.ndarray:
    """Samples from ``start_s`` to ``end_s`` (the end when None), any layout and rate in, 16 kHz mono out."""
    with av.open(str(path), mode="r") as container:
        if not container.streams.audio:
            raise NoAudio(f"{Path(path).name} has no audio stream")
        stream = container.streams.audio[0]
        time_base = float(stream.time_base or Fraction(1, stream.rate or RATE))
        resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
        if start_s > 0:
            container.seek(int(start_s / time_base), stream=stream, any_frame=False, backward=True)
        chunks: list[np.ndarray] = []
        first_ts: float | None = None
        done = False
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.error.InvalidDataError:  # a damaged packet: its few milliseconds are skipped
                continue
            for frame in frames:
                ts = float(frame.pts * time_base) if frame.pts is not None else None
                if end_s is not None and ts is not None and ts >= end_s:
                    done = True
                    break
                for out in resampler.resample(frame):
                    if first_ts is None:
                        first_ts = float(out.pts) / RATE if out.pts is not None else (ts or 0.0)
                    chunks.append(out.to_ndarray().reshape(-1))
            if done:
                break
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
    wave = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    skip = int(round(max(0.0, start_s - (first_ts if first_ts is not None else start_s)) * RATE))
    wave = wave[skip:]
    if end_s is not None:
        wave = wave[: int(round((end_s - start_s) * RATE))]
    return wave
