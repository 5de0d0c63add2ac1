"""Diarization error rate, as NIST and pyannote define it: (missed speech + false alarm + speaker
confusion) / reference speech, under the best one-to-one mapping of hypothesis voices to reference
speakers, on a 10 ms grid; overlapping reference speech counts once per speaker. ``collar`` seconds
around every reference boundary are not scored (0.25 s is the usual forgiveness). ``missed_overlap`` is
the part of ``missed`` where two or more people speak (``overlap``: their share of the reference)."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

Labelled = list[tuple[float, float, str]]


def der(reference: Labelled, hypothesis: Labelled, duration_s: float, collar: float = 0.0, step: float = 0.01) -> dict[str, float]:
    t = np.arange(int(duration_s / step) + 1) * step
    refs = sorted({r[2] for r in reference})
    hyps = sorted({h[2] for h in hypothesis}) or ["-"]
    ref = np.zeros((len(t), len(refs)), bool)
    hyp = np.zeros((len(t), len(hyps)), bool)
    scored = np.ones(len(t), bool)
    for a, b, who in reference:
        ref[(t >= a) & (t < b), refs.index(who)] = True
        if collar:
            scored[(np.abs(t - a) < collar) | (np.abs(t - b) < collar)] = False
    for a, b, who in hypothesis:
        hyp[(t >= a) & (t < b), hyps.index(who)] = True
    ref, hyp = ref[scored], hyp[scored]
    overlap = ref.T.astype(np.int64) @ hyp.astype(np.int64)
    rows, cols = linear_sum_assignment(-overlap)
    n_ref, n_hyp = ref.sum(1), hyp.sum(1)
    total = max(1, int(n_ref.sum()))
    missed = int(np.maximum(n_ref - n_hyp, 0).sum())
    false_alarm = int(np.maximum(n_hyp - n_ref, 0).sum())
    confusion = int(np.minimum(n_ref, n_hyp).sum() - overlap[rows, cols].sum())
    overlapped = n_ref >= 2
    missed_overlap = int(np.maximum(n_ref[overlapped] - n_hyp[overlapped], 0).sum())
    return {
        "der": (missed + false_alarm + confusion) / total,
        "missed": missed / total,
        "false_alarm": false_alarm / total,
        "confusion": confusion / total,
        "missed_overlap": missed_overlap / total,
        "overlap": int((n_ref[overlapped]).sum()) / total,
    }


def read_rttm(text: str) -> Labelled:
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 8 and parts[0] == "SPEAKER":
            start, dur = float(parts[3]), float(parts[4])
            out.append((start, start + dur, parts[7]))
    return out
