"""Synthetic dialogue for tests and benchmarks: lines spoken by distinct offline voices (Debian's
``espeak-ng``), laid on an episode's timeline and muxed into its video with PyAV, with exact truth."""

from __future__ import annotations

import io
import shutil
import subprocess
import wave
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

RATE = 22050
VOICES = {  # espeak-ng voice, pitch, speed: clearly different people
    "obama": ("en-us+m3", 35, 150),
    "biden": ("en-gb+m1", 55, 165),
    "hanks": ("en-us+m7", 25, 140),
    "t1_a": ("en-gb+f3", 70, 160),
    "t1_b": ("en-us+f2", 85, 175),
    "t1_c": ("en-gb-scotland+f4", 60, 150),
    "t1_d": ("en-us+m5", 45, 185),
    "t1_e": ("en+f5", 78, 145),
    "t1_f": ("en-gb-x-rp+m2", 40, 155),
}
LINES = [
    "I told you the meeting was moved to Thursday.",
    "That is not what you said last week, and you know it.",
    "Let us talk about this after the show.",
    "Honestly, I never expected the guests to arrive so early.",
    "Can you pass me the notes from this morning?",
    "We should check the schedule before anyone leaves.",
]


class NoSpeechSynthesis(RuntimeError):
    pass


def have_tts() -> bool:
    return shutil.which("espeak-ng") is not None


def speak(person: str, text: str) -> np.ndarray:
    """The line in ``person``'s voice, float32 at 22.05 kHz, leading and trailing silence trimmed."""
    if not have_tts():
        raise NoSpeechSynthesis("espeak-ng is not installed (apt-get install espeak-ng)")
    voice, pitch, speed = VOICES[person]
    out = subprocess.run(["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(speed), "--stdout", text], capture_output=True, check=True)
    with wave.open(io.BytesIO(out.stdout)) as w:
        data = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768.0
        rate = w.getframerate()
    if rate != RATE:
        data = np.interp(np.arange(0, len(data), rate / RATE), np.arange(len(data)), data).astype(np.float32)
    loud = np.nonzero(np.abs(data) > 0.02)[0]
    return data[loud[0] : loud[-1] + 1] if len(loud) else data


@dataclass
class Line:
    person: str
    start: float
    samples: np.ndarray

    @property
    def end(self) -> float:
        return self.start + len(self.samples) / RATE


def mix(lines: list[Line], duration_s: float) -> np.ndarray:
    track = np.zeros(int(duration_s * RATE) + 1, np.float32)
    for line in lines:
        a = int(line.start * RATE)
        b = min(len(track), a + len(line.samples))
        track[a:b] += line.samples[: b - a]
    return np.clip(track, -1, 1)


def mux_audio(video: Path, track: np.ndarray, out: Path, rate: int = RATE, channels: int = 1) -> Path:
    """``video`` with ``track`` as its audio (AAC), video packets copied as they are."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.mp4")
    layout = "mono" if channels == 1 else "stereo"
    with av.open(str(video)) as src, av.open(str(tmp), "w") as dst:
        vin = src.streams.video[0]
        vout = dst.add_stream_from_template(vin)
        aout = dst.add_stream("aac", rate=rate, layout=layout)
        samples = np.tile(track[None, :], (channels, 1)) if channels > 1 else track[None, :]
        for packet in src.demux(vin):
            if packet.dts is None:
                continue
            packet.stream = vout
            dst.mux(packet)
        step = 1024
        for k in range(0, samples.shape[1], step):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[:, k : k + step]), format="fltp", layout=layout)
            frame.rate = rate
            frame.pts = k
            frame.time_base = Fraction(1, rate)
            for p in aout.encode(frame):
                dst.mux(p)
        for p in aout.encode(None):
            dst.mux(p)
    tmp.replace(out)
    return out
