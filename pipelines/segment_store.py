"""Per-segment detection files: the detector's output for one time segment, written atomically as
Parquet (one row per detection, with the aligned face chip as JPEG bytes) plus a summary in the
file's metadata. A finished segment is never recomputed while its fingerprint matches."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from actors.appearance import DIM
from actors.faces import FrameFaces

from .schemas import SegmentSummary
from .storage import Storage

_META_SUMMARY = b"screenalytics.segment_summary"
_META_FINGERPRINT = b"screenalytics.fingerprint"

SCHEMA = pa.schema(
    [
        ("frame_idx", pa.int64()),
        ("det_idx", pa.int32()),
        ("ts", pa.float64()),
        ("bbox", pa.list_(pa.float32(), 4)),
        ("conf", pa.float32()),
        ("landmarks", pa.list_(pa.float32(), 10)),
        ("blur", pa.float32()),
        ("contrast", pa.float32()),
        ("chip_jpeg", pa.binary()),
        ("appearance", pa.list_(pa.float32(), DIM)),
    ]
)
OPTIONAL = frozenset({"appearance"})
"""Columns that segment files written before them lack: readers get None and derive them."""


@dataclass
class SegmentDetections:
    summary: SegmentSummary
    frame_idx: np.ndarray
    det_idx: np.ndarray
    ts: np.ndarray
    bbox: np.ndarray  # (n, 4)
    conf: np.ndarray
    landmarks: np.ndarray  # (n, 10)
    blur: np.ndarray
    contrast: np.ndarray
    chips: list[bytes] | None = None  # JPEG chips in row order, when asked for
    appearance: np.ndarray | None = None  # (n, DIM) colour descriptors; None in files written before the column


def write_segment(storage: Storage, key: str, summary: SegmentSummary, fingerprint: str, frames: list[FrameFaces]) -> None:
    """One Parquet row per detection of ``frames`` (in frame order), the summary in the file's metadata."""
    frames = sorted(frames, key=lambda f: f.frame_idx)
    n = [len(f) for f in frames]

    def stack(name: str, width: int) -> list:
        parts = [getattr(f, name).reshape(len(f), width) for f in frames]
        return np.concatenate(parts).astype(np.float32).tolist() if parts else []

    rows = {
        "frame_idx": [f.frame_idx for f, k in zip(frames, n) for _ in range(k)],
        "det_idx": [d for k in n for d in range(k)],
        "ts": [f.ts for f, k in zip(frames, n) for _ in range(k)],
        "bbox": stack("boxes", 4),
        "conf": [float(v) for f in frames for v in f.scores],
        "landmarks": stack("landmarks", 10),
        "blur": [float(v) for f in frames for v in f.blur],
        "contrast": [float(v) for f in frames for v in f.contrast],
        "chip_jpeg": [c for f in frames for c in f.chips],
        "appearance": stack("appearance", DIM),
    }
    table = pa.table(rows, schema=SCHEMA)
    table = table.replace_schema_metadata({_META_SUMMARY: summary.model_dump_json().encode(), _META_FINGERPRINT: fingerprint.encode()})
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    storage.write_bytes(key, buf.getvalue())


def segment_fingerprint(storage: Storage, key: str) -> str | None:
    if not storage.exists(key):
        return None
    try:
        meta = pq.read_schema(io.BytesIO(storage.read_bytes(key))).metadata or {}
    except (pa.ArrowInvalid, OSError):
        return None
    value = meta.get(_META_FINGERPRINT)
    return value.decode() if value else None


def read_segment(storage: Storage, key: str, with_chips: bool = False) -> SegmentDetections:
    """A segment's detections (and, ``with_chips``, their JPEG chips) from one read of its file."""
    data = io.BytesIO(storage.read_bytes(key))
    present = set(pq.read_schema(data).names)
    columns = [c for c in SCHEMA.names if (with_chips or c != "chip_jpeg") and (c in present or c not in OPTIONAL)]
    table = pq.read_table(data, columns=columns)
    summary = SegmentSummary.model_validate_json((table.schema.metadata or {})[_META_SUMMARY])
    n = table.num_rows

    def arr(name: str, width: int | None = None) -> np.ndarray:
        col = table.column(name)
        if width is None:
            return col.to_numpy()
        flat = col.combine_chunks().flatten().to_numpy() if n else np.zeros(0, np.float32)
        return flat.reshape(n, width)

    return SegmentDetections(
        summary=summary,
        frame_idx=arr("frame_idx"),
        det_idx=arr("det_idx"),
        ts=arr("ts"),
        bbox=arr("bbox", 4),
        conf=arr("conf"),
        landmarks=arr("landmarks", 10),
        blur=arr("blur"),
        contrast=arr("contrast"),
        chips=[c.as_py() for c in table.column("chip_jpeg")] if with_chips else None,
        appearance=arr("appearance", DIM) if "appearance" in columns else None,
    )


def read_chips(storage: Storage, key: str, wanted: set[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    """JPEG chips of the wanted (frame_idx, det_idx) pairs of one segment."""
    table = pq.read_table(io.BytesIO(storage.read_bytes(key)), columns=["frame_idx", "det_idx", "chip_jpeg"])
    frames = table.column("frame_idx").to_pylist()
    dets = table.column("det_idx").to_pylist()
    chips = table.column("chip_jpeg")
    return {(f, d): chips[i].as_py() for i, (f, d) in enumerate(zip(frames, dets)) if (f, d) in wanted}
