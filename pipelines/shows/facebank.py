"""A show's facebank in the data dir: one JSON file per reference face, one JPEG per aligned chip.

Writers never rewrite a shared file: adding a face writes its entry, removing one deletes it. So the
API, the CLI and a catalog run may change one bank at the same time without losing each other's
faces, and the bank's version is simply the listing of its entries (what the facebank actor watches).

Entry ids say where a face came from: ``p-...`` a photo, ``c-{run}-...`` a cluster a reviewer
confirmed in that run (so a run's entries are found, and replaced, by one prefix).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Optional

import numpy as np
from pydantic import ValidationError

from ..artifacts import read_model, write_model
from ..layout import facebank_chip_key, facebank_entry_key, facebank_prefix
from ..schemas import FacebankEntry
from ..storage import Storage

ENTRY_ID_PATTERN = r"^[pc]-[0-9a-f-]{10,40}$"


def _digest(*parts: object) -> str:
    return hashlib.sha1("\x1f".join(str(p) for p in parts).encode()).hexdigest()


def photo_entry_id(cast_id: str, photo_bytes: bytes, embedding_model: str) -> str:
    return f"p-{_digest(cast_id, hashlib.sha1(photo_bytes).hexdigest(), embedding_model)[:20]}"


def run_entry_prefix(ep_id: str, run_id: str) -> str:
    return f"c-{_digest(ep_id, run_id)[:10]}-"


def cluster_entry_id(ep_id: str, run_id: str, face_id: str, kind: str, who: str, embedding_model: str) -> str:
    return f"{run_entry_prefix(ep_id, run_id)}{_digest(face_id, kind, who, embedding_model)[:16]}"


def entry_ids(storage: Storage, show_id: str) -> list[str]:
    return [n[: -len(".json")] for n in storage.children(facebank_prefix(show_id)) if n.endswith(".json")]


def bank_version(storage: Storage, show_id: str) -> str:
    """Changes whenever a face is added or removed."""
    return _digest(*entry_ids(storage, show_id))[:16]


def read_entry(storage: Storage, show_id: str, entry_id: str) -> Optional[FacebankEntry]:
    try:
        return read_model(storage, facebank_entry_key(show_id, entry_id), FacebankEntry)
    except (FileNotFoundError, ValueError, ValidationError):
        return None  # removed meanwhile, or half-written by a crashed older writer


def list_entries(storage: Storage, show_id: str, embedding_model: Optional[str] = None) -> list[FacebankEntry]:
    entries = [e for i in entry_ids(storage, show_id) if (e := read_entry(storage, show_id, i)) is not None]
    return [e for e in entries if embedding_model is None or e.embedding_model == embedding_model]


def write_entry(storage: Storage, show_id: str, entry: FacebankEntry, chip_jpeg: Optional[bytes] = None) -> FacebankEntry:
    """The chip first, then the entry: an entry never points at a missing chip."""
    if chip_jpeg is not None:
        key = facebank_chip_key(show_id, entry.entry_id)
        storage.write_bytes(key, chip_jpeg)
        entry = entry.model_copy(update={"chip_key": key})
    write_model(storage, facebank_entry_key(show_id, entry.entry_id), entry)
    return entry


def remove_entries(storage: Storage, show_id: str, ids: Iterable[str]) -> int:
    removed = 0
    for entry_id in ids:
        removed += storage.delete_prefix(facebank_entry_key(show_id, entry_id))
        storage.delete_prefix(facebank_chip_key(show_id, entry_id))
    return removed


def label_of(entry: FacebankEntry) -> str:
    """The key a match is reported under: ``cast:{id}``, ``guest:{label}`` or ``not_face:{label}``."""
    if entry.kind == "cast":
        return f"cast:{entry.cast_id}"
    return f"{entry.kind}:{entry.label or entry.entry_id}"


def load_matrix(storage: Storage, show_id: str, embedding_model: str) -> tuple[list[str], np.ndarray]:
    """(label per row, unit embeddings) of the bank's faces made by ``embedding_model``."""
    entries = list_entries(storage, show_id, embedding_model)
    if not entries:
        return [], np.zeros((0, 0), np.float32)
    matrix = np.asarray([e.embedding for e in entries], np.float32)
    matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    return [label_of(e) for e in entries], matrix


def models_in_bank(storage: Storage, show_id: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for e in list_entries(storage, show_id):
        counts[e.embedding_model] = counts.get(e.embedding_model, 0) + 1
    return counts
