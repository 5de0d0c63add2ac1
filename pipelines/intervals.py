"""Interval arithmetic for screen time: closed-open ``[start, end)`` spans in seconds."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence

Span = tuple[float, float]


def union(intervals: Iterable[Sequence[float]]) -> list[Span]:
    """Sorted, disjoint spans covering the same time; touching spans are joined."""
    spans = sorted((float(a), float(b)) for a, b in intervals if b > a)
    out: list[Span] = []
    for a, b in spans:
        if out and a <= out[-1][1]:
            if b > out[-1][1]:
                out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def bridge_gaps(spans: Iterable[Sequence[float]], gap_tolerance: float, barriers: Sequence[float] = ()) -> list[Span]:
    """Union, then close gaps no longer than ``gap_tolerance`` unless a barrier (a shot cut time) lies in
    the gap, ends included: somebody who leaves at a cut was really off screen."""
    merged = union(spans)
    cuts = sorted(barriers)
    out: list[Span] = []
    for a, b in merged:
        if out:
            gap_start = out[-1][1]
            gap = a - gap_start
            i = bisect_left(cuts, gap_start - 1e-9)
            cut_in_gap = i < len(cuts) and cuts[i] <= a + 1e-9
            if gap <= gap_tolerance + 1e-9 and not cut_in_gap:
                out[-1] = (out[-1][0], b)
                continue
        out.append((a, b))
    return out


def pad(spans: Iterable[Sequence[float]], padding: float, lo: float = 0.0, hi: float = float("inf")) -> list[Span]:
    return union((max(lo, a - padding), min(hi, b + padding)) for a, b in spans)


def total(spans: Iterable[Sequence[float]]) -> float:
    return float(sum(b - a for a, b in union(spans)))


def clip(spans: Iterable[Sequence[float]], lo: float, hi: float) -> list[Span]:
    return union((max(lo, a), min(hi, b)) for a, b in spans if min(hi, b) > max(lo, a))


def seconds_per_bin(spans: Iterable[Sequence[float]], duration: float, bin_s: float = 1.0) -> list[float]:
    """Seconds covered in each ``bin_s`` bin from 0 to ``duration`` (the per-second timeline)."""
    n = max(0, int(-(-duration // bin_s)))
    out = [0.0] * n
    for a, b in union(spans):
        k = int(a // bin_s)
        while k < n and k * bin_s < b:
            lo, hi = max(a, k * bin_s), min(b, (k + 1) * bin_s)
            out[k] += max(0.0, hi - lo)
            k += 1
    return out


def intersect(a: Iterable[Sequence[float]], b: Iterable[Sequence[float]]) -> list[Span]:
    """Where both sets of spans are on (each side merged first)."""
    left, right = union(a), union(b)
    out: list[Span] = []
    i = j = 0
    while i < len(left) and j < len(right):
        lo, hi = max(left[i][0], right[j][0]), min(left[i][1], right[j][1])
        if hi > lo:
            out.append((lo, hi))
        if left[i][1] < right[j][1]:
            i += 1
        else:
            j += 1
    return out


def subtract(a: Iterable[Sequence[float]], b: Iterable[Sequence[float]]) -> list[Span]:
    """``a`` where ``b`` is off."""
    out: list[Span] = []
    cuts = union(b)
    for lo, hi in union(a):
        start = lo
        for c0, c1 in cuts:
            if c1 <= start or c0 >= hi:
                continue
            if c0 > start:
                out.append((start, c0))
            start = max(start, c1)
        if start < hi:
            out.append((start, hi))
    return out
