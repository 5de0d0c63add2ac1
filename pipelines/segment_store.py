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
from actors.detections import Detections

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
        ("detected", pa.bool_()),
    ]
)
OPTIONAL = frozenset({"appearance", "detected"})
"""Columns that segment files written before them lack: readers get None and derive them."""


@dataclass
class SegmentFile:
    """One segment's detections (with ``ts``, ``blur``, ``contrast``, ``detected`` (False: interpolated,
    with an empty chip), and when present ``appearance`` and ``chip_jpeg``, as extra columns) and its summary."""

    summary: SegmentSummary
    faces: Detections


def write_segment(storage: Storage, key: str, summary: SegmentSummary, fingerprint: str, faces: Detections) -> None:
    """One Parquet row per detection of ``faces`` (in frame order), the summary in the file's metadata."""
    faces = faces[np.argsort(faces.frame_idx, kind="stable")]
    rows = {
        "frame_idx": faces.frame_idx.astype(np.int64),
        "det_idx": faces.det_idx.astype(np.int32),
        "ts": faces.extra["ts"].astype(np.float64),
        "bbox": _fixed_list(faces.boxes, 4),
        "conf": faces.scores.astype(np.float32),
        "landmarks": _fixed_list(faces.landmarks, 10),
        "blur": faces.extra["blur"].astype(np.float32),
        "contrast": faces.extra["contrast"].astype(np.float32),
        "chip_jpeg": pa.array(list(faces.extra["chip_jpeg"]), pa.binary()),
        "appearance": _fixed_list(faces.extra["appearance"], DIM),
        "detected": faces.detected,
    }
    table = pa.table(rows, schema=SCHEMA)
    table = table.replace_schema_metadata({_META_SUMMARY: summary.model_dump_json().encode(), _META_FINGERPRINT: fingerprint.encode()})
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    storage.write_bytes(key, buf.getvalue())


def _fixed_list(values: np.ndarray, width: int) -> pa.Array:
    flat = pa.array(np.ascontiguousarray(values, np.float32).reshape(-1))
    return pa.FixedSizeListArray.from_arrays(flat, width)


def segment_fingerprint(storage: Storage, key: str) -> str | None:
    if not storage.exists(key):
        return None
    try:
        meta = pq.read_schema(io.BytesIO(storage.read_bytes(key))).metadata or {}
    except (pa.ArrowInvalid, OSError):
        return None
    value = meta.get(_META_FINGERPRINT)
    return value.decode() if value else None


def read_segment(storage: Storage, key: str, with_chips: bool = False) -> SegmentFile:
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

    extra = {"ts": arr("ts"), "blur": arr("blur"), "contrast": arr("contrast")}
    extra["detected"] = arr("detected").astype(bool) if "detected" in columns else np.ones(n, bool)
    if "appearance" in columns:
        extra["appearance"] = arr("appearance", DIM)
    if with_chips:
        chips = np.empty(n, dtype=object)
        chips[:] = [c.as_py() for c in table.column("chip_jpeg")]
        extra["chip_jpeg"] = chips
    faces = Detections(
        frame_idx=arr("frame_idx").astype(np.int64),
        boxes=arr("bbox", 4),
        scores=arr("conf"),
        landmarks=arr("landmarks", 10),
        det_idx=arr("det_idx").astype(np.int32),
        track_id=np.full(n, -1, np.int64),
        extra=extra,
    )
    return SegmentFile(summary, faces)


def read_chips(storage: Storage, key: str, wanted: set[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    """JPEG chips of the wanted (frame_idx, det_idx) pairs of one segment."""
    table = pq.read_table(io.BytesIO(storage.read_bytes(key)), columns=["frame_idx", "det_idx", "chip_jpeg"])
    frames = table.column("frame_idx").to_pylist()
    dets = table.column("det_idx").to_pylist()
    chips = table.column("chip_jpeg")
    return {(f, d): chips[i].as_py() for i, (f, d) in enumerate(zip(frames, dets)) if (f, d) in wanted}
