"""Typed read/write helpers over :class:`~pipelines.storage.Storage`.

Where artifacts live is :mod:`pipelines.layout`'s business; this module only reads and writes them.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from typing import TypeVar

import numpy as np
from pydantic import BaseModel

from .layout import RunLayout
from .schemas import StageMarker, StageName
from .storage import Storage

M = TypeVar("M", bound=BaseModel)


def write_model(storage: Storage, key: str, model: BaseModel) -> None:
    storage.write_text(key, model.model_dump_json(indent=2) + "\n")


def read_model(storage: Storage, key: str, cls: type[M]) -> M:
    return cls.model_validate_json(storage.read_bytes(key))


def write_jsonl(storage: Storage, key: str, rows: Iterable[BaseModel]) -> int:
    buf = io.StringIO()
    n = 0
    for row in rows:
        buf.write(row.model_dump_json())
        buf.write("\n")
        n += 1
    storage.write_text(key, buf.getvalue())
    return n


def read_jsonl(storage: Storage, key: str, cls: type[M]) -> list[M]:
    text = storage.read_text(key)
    return [cls.model_validate_json(line) for line in text.splitlines() if line.strip()]


def write_npy(storage: Storage, key: str, array: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    storage.write_bytes(key, buf.getvalue())


def read_npy(storage: Storage, key: str) -> np.ndarray:
    return np.load(io.BytesIO(storage.read_bytes(key)), allow_pickle=False)


def csv_text(columns: Sequence[str], rows: Iterable[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    return buf.getvalue()


def write_csv(storage: Storage, key: str, columns: Sequence[str], rows: Iterable[dict]) -> None:
    storage.write_text(key, csv_text(columns, rows))


def read_marker(storage: Storage, layout: RunLayout, stage: StageName) -> StageMarker | None:
    key = layout.marker(stage)
    if not storage.exists(key):
        return None
    return read_model(storage, key, StageMarker)


def dumps(obj: object) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
