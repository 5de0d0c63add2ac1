"""Synthetic dialogue for tests and benchmarks: lines spoken by distinct offline voices (Debian's
``flite`` and ``espeak-ng``), laid on an episode's timeline and muxed into its video with PyAV, with
exact truth."""

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
VOICES = {  # engine, voice, pitch (espeak-ng), speed (espeak-ng words per minute)
    # flite's clustergen voices are built from different recorded speakers (CMU ARCTIC: rms, slt, awb;
    # kal is a diphone voice): a speaker encoder trained on people tells them apart as it would people.
    "obama": ("flite", "rms", 0, 0),
    "t1_a": ("flite", "slt", 0, 0),
    "hanks": ("flite", "kal", 0, 0),
    "biden": ("flite", "awb", 0, 0),
    # espeak-ng's voices are variants of one formant synthesizer, and most pairs sound alike to the
    # encoder (mean window similarity up to 0.80, as high as within one voice); these five are the
    # mutually farthest of 15 tried (at most 0.65 between any two of all nine, 0.79-0.86 within).
    "t1_b": ("espeak-ng", "en-gb-x-rp+m2", 40, 155),
    "t1_c": ("espeak-ng", "en-gb-scotland+f4", 60, 150),
    "t1_d": ("espeak-ng", "en-us+whisper", 50, 150),
    "t1_e": ("espeak-ng", "en+f5", 78, 145),
    "t1_f": ("espeak-ng", "en-gb+f1", 90, 170),
}
ENGINES = ("espeak-ng", "flite")
LINES = [
    "I told you the meeting was moved to Thursday.",
    "That is not what you said last week, and you know it.",
    "Let us talk about this after the show.",
    "Honestly, I never expected the guests to arrive so early.",
    "Can you pass me the notes from this morning?",
    "We should check the schedule before anyone leaves.",
]


REPLIES = ["Yes.", "No.", "Right.", "Really?", "Oh, come on.", "Sure.", "Wait.", "Exactly."]
"""Replies of 0.3-1 s: shorter than the speaker encoder's window, the hard part of quick exchanges."""


class NoSpeechSynthesis(RuntimeError):
    pass


def missing_tts() -> list[str]:
    """The speech engines (Debian packages) the voices need that are not installed."""
    return [engine for engine in ENGINES if shutil.which(engine) is None]


def have_tts() -> bool:
    return not missing_tts()


def speak(person: str, text: str) -> np.ndarray:
    """The line in ``person``'s voice, float32 at 22.05 kHz, leading and trailing silence trimmed."""
    engine, voice, pitch, speed = VOICES[person]
    if shutil.which(engine) is None:
        raise NoSpeechSynthesis(f"{engine} is not installed (apt-get install {engine})")
    if engine == "flite":
        command = ["flite", "-voice", voice, "-t", text, "-o", "/dev/stdout"]
    else:
        command = ["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(speed), "--stdout", text]
    out = subprocess.run(command, capture_output=True, check=True)
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


def rapid_exchange(seed: int, people: list[str], turns: int = 14) -> tuple[list[Line], float]:
    """A quick back-and-forth among ``people``: no one speaks twice in a row, two turns in five are short
    replies (:data:`REPLIES`), and each turn starts between 0.25 s before the last one ends (overlap)
    and 0.3 s after it. Returns (lines, duration)."""
    rng = np.random.default_rng(seed)
    lines: list[Line] = []
    t, previous = 0.5, None
    for _ in range(turns):
        person = str(rng.choice([p for p in people if p != previous]))
        text = str(rng.choice(REPLIES)) if rng.random() < 0.4 else str(rng.choice(LINES))
        start = max(0.0, t + float(rng.uniform(-0.25, 0.3))) if lines else t
        lines.append(Line(person, start, speak(person, text)))
        t, previous = lines[-1].end, person
    return lines, t + 0.5


def at_16k(track: np.ndarray) -> np.ndarray:
    """A mixed track (22.05 kHz) at the 16 kHz the speech models read, by linear interpolation."""
    return np.interp(np.arange(0, len(track), RATE / 16000), np.arange(len(track)), track).astype(np.float32)


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
