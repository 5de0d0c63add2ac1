"""The analyst's table: one tidy shape for an episode, a season and a catalog, in CSV and Parquet.

One row per episode and person on screen: each cast member, and each identity nobody named (a guest, an
unknown face, an extra) as its own row with its ``kind``. Every file of this shape has the same columns
and Parquet types, so ``pandas.concat(pd.read_parquet(p) for p in paths)`` over any set of them is one
table with no reshaping. ``speaking_s`` is empty (CSV) / null (Parquet) / absent (JSON) when the episode's
speech was not measured (no audio track, speech models not installed, audio turned off), never 0.0.

``analytics/screentime.csv`` keeps the columns of the system this one replaces; this is the table to
hand an analyst.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any, Optional

import pyarrow as pa
import pyarrow.parquet as pq

from .artifacts import csv_text
from .ids import parse_ep_id, parse_face_id
from .layout import RunLayout
from .schemas import ScreentimeReport
from .storage import Storage

EXPORT_SCHEMA = pa.schema(
    [
        ("show", pa.string()),
        ("ep_id", pa.string()),
        ("run_id", pa.string()),
        ("kind", pa.string()),  # cast, guest, unknown (nobody named it yet), extra (small, brief or in the background)
        ("cast_id", pa.string()),
        ("name", pa.string()),  # the cast member's name, a guest's name, else the identity id
        ("named_by", pa.string()),  # auto (facebank), manual (a reviewer), mixed; empty when unnamed
        ("seconds", pa.float64()),  # on screen
        ("share_of_episode", pa.float64()),  # seconds / episode duration
        ("first_seen_s", pa.float64()),
        ("last_seen_s", pa.float64()),
        ("appearances", pa.int64()),  # separate intervals on screen
        ("speaking_s", pa.float64()),  # null when speech was not measured
        ("identities", pa.string()),  # the identity ids counted, ';'-separated
        ("thumbnail", pa.string()),  # data-dir key of a representative face crop (JPEG)
        ("episode_duration_s", pa.float64()),
    ]
)
EXPORT_COLUMNS = tuple(EXPORT_SCHEMA.names)
UNNAMED_KINDS = ("guest", "unknown", "extra")  # not_face and junk count nowhere, so they are not rows


def speech_measured(report: ScreentimeReport) -> bool:
    """Whether the episode's speech was analysed (the audio stage ran on an audio track)."""
    return "speech_s" in report.diagnostics


def episode_rows(report: ScreentimeReport) -> list[dict[str, Any]]:
    """The episode's rows: cast members by seconds on screen, then unnamed identities by seconds."""
    layout = RunLayout(report.ep_id, report.run_id)
    duration = report.math.video_duration_s
    measured = speech_measured(report)
    spoken = {s.identity_id: s.speaking_s for s in report.identity_speech}
    intervals = {row.cast_id: row.intervals for row in report.timeline if row.cast_id}

    def row(
        kind: str, cast_id: Optional[str], name: str, named_by: Optional[str], seconds: float, spans: list[list[float]], speaking: Optional[float], idents: list
    ) -> dict:
        longest = max(idents, key=lambda i: i.visual_s, default=None)
        return {
            "show": parse_ep_id(report.ep_id).show,
            "ep_id": report.ep_id,
            "run_id": report.run_id,
            "kind": kind,
            "cast_id": cast_id,
            "name": name,
            "named_by": named_by,
            "seconds": round(seconds, 3),
            "share_of_episode": round(seconds / duration, 4) if duration else None,
            "first_seen_s": spans[0][0] if spans else None,
            "last_seen_s": spans[-1][1] if spans else None,
            "appearances": len(spans),
            "speaking_s": (round(speaking or 0.0, 3)) if measured else None,
            "identities": ";".join(i.identity_id for i in idents),
            "thumbnail": _thumbnail(layout, longest.rep_face_id) if longest else None,
            "episode_duration_s": duration,
        }

    rows = []
    for m in report.metrics:
        idents = [i for i in report.identities if i.cast_id == m.cast_id]
        rows.append(row("cast", m.cast_id, m.name, m.named_by, m.visual_s, intervals.get(m.cast_id or "", []), m.speaking_s, idents))
    for ident in report.identities:
        if ident.cast_id is None and ident.kind in UNNAMED_KINDS:
            named_by = "manual" if ident.kind == "guest" and ident.label else None
            rows.append(
                row(ident.kind, None, ident.label or ident.identity_id, named_by, ident.visual_s, ident.intervals, spoken.get(ident.identity_id), [ident])
            )
    return rows


def _thumbnail(layout: RunLayout, face: Optional[str]) -> Optional[str]:
    if not face:
        return None
    track_id, frame_idx = parse_face_id(face)
    return layout.crop(track_id, frame_idx)


def table(rows: Iterable[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=EXPORT_SCHEMA)


def parquet_bytes(rows: Iterable[dict[str, Any]]) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table(rows), buf)
    return buf.getvalue()


def csv_bytes(rows: Iterable[dict[str, Any]]) -> bytes:
    """CSV with a header row; a null is an empty cell."""
    return csv_text(EXPORT_COLUMNS, rows).encode()


def json_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows for JSON: a value that was not measured is absent, not null."""
    return [{k: v for k, v in r.items() if not (k == "speaking_s" and v is None)} for r in rows]


def write_tables(storage: Storage, stem: str, rows: list[dict[str, Any]]) -> tuple[str, str]:
    """``{stem}.csv`` and ``{stem}.parquet`` side by side; returns their keys."""
    storage.write_bytes(f"{stem}.csv", csv_bytes(rows))
    storage.write_bytes(f"{stem}.parquet", parquet_bytes(rows))
    return f"{stem}.csv", f"{stem}.parquet"


def write_episode_export(storage: Storage, report: ScreentimeReport) -> None:
    from .registry import EXPORT_CSV, EXPORT_PARQUET

    layout, rows = RunLayout(report.ep_id, report.run_id), episode_rows(report)
    EXPORT_CSV.write_bytes(storage, layout, csv_bytes(rows))
    EXPORT_PARQUET.write_bytes(storage, layout, parquet_bytes(rows))
