"""Detect on keyframes, carry faces in between: which sampled frames the detector runs on.

Inside a shot the detector runs on every ``max_gap``-th sampled frame (and on the shot's first and last
ones). Between two detected frames A and B the faces are *interpolated* (boxes and landmarks move
linearly) when the two agree: as many faces in each, every face of A paired with one of B (box overlap
>= ``match_iou``, colour descriptor similarity >= ``appearance_min``, and both scores on the same side
of ``confident``, the score that starts a track: a face sliding in at the edge turns confident
somewhere between, and that frame is where its track starts), and the picture outside the faces
still (no thumbnail cell changes by more than ``max_picture_change`` against both the blend of A and B
and the nearer of them moved by the best-fitting camera pan, so a person who walks in and out between
them is not missed). When they disagree the frame half-way is
detected and each half is judged again (bisection), so a face's first and last frames are always
detected frames and screen-time edges stay exact to the sampling step. The detector runs at most once
per sampled frame: a shot where everything moves costs what detecting every frame costs, and a still
confessional costs one detection per ``max_gap`` samples.

Interpolated faces carry ``detected=False``, no chip (an empty JPEG: they are never embedded) and the
nearer detected face's quality and colour descriptor; their score is the lower of the two.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from .detections import Detections, iou_matrix
from .faces import SampledFrame

DetectFn = Callable[[list[SampledFrame]], list[Detections]]
"""Detected faces (with ``ts``, ``blur``, ``contrast``, ``appearance`` and ``chip_jpeg`` columns) for each frame given."""

BODY_BELOW = 2.0
"""Face heights below a face (and ``BODY_SIDE`` widths each side) that count as that person's own
region: a talking head's shoulders and hands move without anyone entering the picture."""
BODY_SIDE = 1.0
PAN_PX = 4
"""Largest camera pan between two sampled frames allowed for, in thumbnail pixels (horizontally; half
that vertically): 4 of 64 is 80 px of a 720p frame, one sampling step apart."""
CELL_PX = 8
"""Side of the picture-change cells, in thumbnail pixels (64x36 thumbnails: 8x5 cells of 8x8 px)."""


@dataclass(frozen=True)
class KeyframeSettings:
    """How sparsely the detector runs (trade-offs: ``pipelines.stage_settings.DetectTrackConfig``)."""

    max_gap: int
    match_iou: float
    appearance_min: float
    max_picture_change: float
    confident: float


@dataclass
class _Known:
    frame: SampledFrame
    faces: Detections


def starts_shot(previous: SampledFrame, frame: SampledFrame) -> bool:
    """Whether a shot cut lies between two consecutive sampled frames."""
    return frame.frame_idx in frame.cuts or any(c > previous.frame_idx for c in previous.cuts)


def pair_faces(a: Detections, b: Detections, settings: KeyframeSettings) -> list[tuple[int, int]] | None:
    """Every face of ``a`` paired with one of ``b`` (see the module), or None when they do not pair up."""
    if len(a) != len(b):
        return None
    if len(a) == 0:
        return []
    iou = iou_matrix(a.boxes, b.boxes)
    same_side = (a.scores[:, None] >= settings.confident) == (b.scores[None, :] >= settings.confident)
    iou = np.where(same_side, iou, 0.0)
    if "appearance" in a.extra and settings.appearance_min > 0:
        alike = a.extra["appearance"].astype(np.float32) @ b.extra["appearance"].astype(np.float32).T
        iou = np.where(alike >= settings.appearance_min, iou, 0.0)
    pairs = []
    for _ in range(len(a)):
        r, c = np.unravel_index(int(np.argmax(iou)), iou.shape)
        if iou[r, c] < settings.match_iou or iou[r, c] <= 0:
            return None
        pairs.append((int(r), int(c)))
        iou[r, :] = -1.0
        iou[:, c] = -1.0
    return pairs


def _own_regions(faces: Detections, frame_shape: tuple[int, int], thumb_shape: tuple[int, int]) -> np.ndarray:
    """Thumbnail pixels that belong to the faces' people (face, shoulders, hands): True where masked."""
    th, tw = thumb_shape
    h, w = frame_shape
    mask = np.zeros((th, tw), bool)
    for x1, y1, x2, y2 in faces.boxes:
        fw, fh = x2 - x1, y2 - y1
        left, right = (x1 - BODY_SIDE * fw) * tw / w, (x2 + BODY_SIDE * fw) * tw / w
        top, bottom = y1 * th / h, (y2 + BODY_BELOW * fh) * th / h
        mask[max(0, int(top)) : max(0, int(np.ceil(bottom))), max(0, int(left)) : max(0, int(np.ceil(right)))] = True
    return mask


def _still(a: _Known, between: list[SampledFrame], b: _Known, limit: float) -> bool:
    """Whether no frame of ``between`` changes by more than ``limit`` (see :func:`picture_change`)."""
    if a.frame.thumb is None:
        return True
    masked = _own_regions(Detections.concat([a.faces, b.faces]), a.frame.shape, a.frame.thumb.shape[:2])
    return all(picture_change(a, m, b, masked) <= limit for m in between)


def picture_change(a: _Known, mid: SampledFrame, b: _Known, masked: np.ndarray | None = None) -> float:
    """The largest mean change of a thumbnail cell outside the faces' own regions (``masked``, derived
    from A's and B's faces when not given), between ``mid`` and both the blend of A and B it would be if
    nothing but the faces moved and the nearer of them moved by the best-fitting camera pan (0 when a
    frame has no thumbnail)."""
    if a.frame.thumb is None or b.frame.thumb is None or mid.thumb is None:
        return 0.0
    t = (mid.frame_idx - a.frame.frame_idx) / max(1, b.frame.frame_idx - a.frame.frame_idx)
    seen = mid.thumb.astype(np.float32)
    blend = np.abs(seen - ((1 - t) * a.frame.thumb + t * b.frame.thumb)).mean(axis=2)
    diff = np.minimum(blend, _panned_difference(seen, (a.frame.thumb if t <= 0.5 else b.frame.thumb).astype(np.float32)))
    if masked is None:
        masked = _own_regions(Detections.concat([a.faces, b.faces]), mid.shape, diff.shape)
    diff[masked] = np.nan
    th, tw = diff.shape
    cells = diff[: th - th % CELL_PX or th, : tw - tw % CELL_PX or tw]
    ch, cw = cells.shape[0] // CELL_PX or 1, cells.shape[1] // CELL_PX or 1
    blocks = cells[: ch * CELL_PX, : cw * CELL_PX].reshape(ch, CELL_PX, cw, CELL_PX)
    with np.errstate(all="ignore"):
        kept = np.isfinite(blocks).sum(axis=(1, 3))
        means = np.where(kept >= CELL_PX * CELL_PX // 2, np.nansum(blocks, axis=(1, 3)) / np.maximum(kept, 1), 0.0)
    return float(means.max()) if means.size else 0.0


def _panned_difference(seen: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per-pixel difference between ``seen`` and ``reference`` moved by the whole-picture shift (up to
    ``PAN_PX`` thumbnail pixels each way) that fits best: a camera pan moves everything and is not a
    change; pixels the shift brings in from outside the picture count as unchanged. The shift is found
    on the row and column means (two 1-d searches instead of a 2-d one over every shift, which took
    2.4 ms a frame)."""
    h, w = seen.shape[:2]
    dx = _best_offset(seen.mean(axis=(0, 2)), reference.mean(axis=(0, 2)), PAN_PX)
    dy = _best_offset(seen.mean(axis=(1, 2)), reference.mean(axis=(1, 2)), PAN_PX // 2)
    ys, yr = slice(max(0, dy), h + min(0, dy)), slice(max(0, -dy), h + min(0, -dy))
    xs, xr = slice(max(0, dx), w + min(0, dx)), slice(max(0, -dx), w + min(0, -dx))
    out = np.zeros((h, w), np.float32)
    out[ys, xs] = np.abs(seen[ys, xs] - reference[yr, xr]).mean(axis=2)
    return out


def _best_offset(seen: np.ndarray, reference: np.ndarray, reach: int) -> int:
    """The shift d in [-reach, reach] for which ``seen[i]`` best matches ``reference[i - d]``."""
    n = len(seen)
    costs = [float(np.abs(seen[max(0, d) : n + min(0, d)] - reference[max(0, -d) : n + min(0, -d)]).mean()) for d in range(-reach, reach + 1)]
    return int(np.argmin(costs)) - reach


def interpolate(a: _Known, b: _Known, pairs: list[tuple[int, int]], frame: SampledFrame) -> Detections:
    """The faces of ``frame`` (between A and B), carried along the straight line from A's to B's."""
    if not pairs:
        return _no_faces(a.faces)
    ia, ib = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    fa, fb = a.faces[ia], b.faces[ib]
    t = (frame.frame_idx - a.frame.frame_idx) / max(1, b.frame.frame_idx - a.frame.frame_idx)
    nearer = fa if t <= 0.5 else fb
    n = len(pairs)
    chips = np.empty(n, dtype=object)
    chips[:] = [b""] * n
    extra = {k: v for k, v in nearer.extra.items() if k not in ("ts", "chip_jpeg", "detected")}
    return Detections(
        frame_idx=np.full(n, frame.frame_idx, np.int64),
        boxes=((1 - t) * fa.boxes + t * fb.boxes).astype(np.float32),
        scores=np.minimum(fa.scores, fb.scores).astype(np.float32),
        landmarks=((1 - t) * fa.landmarks + t * fb.landmarks).astype(np.float32),
        det_idx=np.arange(n, dtype=np.int32),
        track_id=np.full(n, -1, np.int64),
        extra={**extra, "ts": np.full(n, frame.ts), "chip_jpeg": chips, "detected": np.zeros(n, bool)},
    )


def _no_faces(like: Detections) -> Detections:
    return like[np.zeros(0, np.int64)]


class KeyframeDetector:
    """Runs ``detect`` on the keyframes of a stream of sampled frames (one segment, in order) and yields
    every frame with its faces, detected or interpolated (see the module)."""

    def __init__(self, detect: DetectFn, settings: KeyframeSettings):
        if settings.max_gap < 1:
            raise ValueError(f"max_gap must be >= 1, got {settings.max_gap}")
        self._detect = detect
        self.settings = settings
        self.judge_s = 0.0
        """Seconds spent deciding between detected frames and interpolating (the detector's time excluded)."""

    def _detect_one(self, frame: SampledFrame) -> _Known:
        return _Known(frame, self._detect([frame])[0])

    def run(self, frames: Iterable[SampledFrame]) -> Iterator[tuple[SampledFrame, Detections]]:
        anchor: _Known | None = None
        pending: list[SampledFrame] = []
        previous: SampledFrame | None = None
        for frame in frames:
            if anchor is not None and previous is not None and starts_shot(previous, frame):
                yield from self._close(anchor, pending)[0]
                anchor, pending = None, []
            previous = frame
            if anchor is None:
                anchor = self._detect_one(frame)
                yield frame, anchor.faces
                continue
            pending.append(frame)
            if len(pending) >= self.settings.max_gap:
                done, anchor = self._close(anchor, pending)
                pending = []
                yield from done
        if anchor is not None:
            yield from self._close(anchor, pending)[0]

    def _close(self, anchor: _Known, pending: list[SampledFrame]) -> tuple[list[tuple[SampledFrame, Detections]], _Known]:
        """Detect the last pending frame and fill those before it: (the pending frames with their faces,
        in order; the last one, the next anchor)."""
        if not pending:
            return [], anchor
        end = self._detect_one(pending[-1])
        filled: dict[int, Detections] = {end.frame.frame_idx: end.faces}
        self._fill(anchor, pending[:-1], end, filled)
        return [(frame, filled[frame.frame_idx]) for frame in pending], end

    def _fill(self, a: _Known, between: list[SampledFrame], b: _Known, filled: dict[int, Detections]) -> None:
        if not between:
            return
        began = time.perf_counter()
        pairs = pair_faces(a.faces, b.faces, self.settings)
        if pairs is not None and not _still(a, between, b, self.settings.max_picture_change):
            pairs = None  # the faces agree, the picture around them does not
        if pairs is not None:
            for frame in between:
                filled[frame.frame_idx] = interpolate(a, b, pairs, frame)
        self.judge_s += time.perf_counter() - began
        if pairs is not None:
            return
        half = len(between) // 2
        middle = self._detect_one(between[half])
        filled[middle.frame.frame_idx] = middle.faces
        self._fill(a, between[:half], middle, filled)
        self._fill(middle, between[half + 1 :], b, filled)
