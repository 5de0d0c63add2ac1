"""A model change: the bank's stored chips embedded again with the current embedder.

Entries are never compared across models; an entry made by another embedder gets a sibling made by
the current one from its stored aligned chip (same alignment template for SFace and ArcFace). Entries
without a chip cannot be converted and are counted, so the user knows to add those photos again.
"""

from __future__ import annotations

import cv2
import numpy as np

from actors.models.config import ModelConfig
from actors.models.registry import load_embedder

from . import facebank


def reembed(storage: facebank.Storage, show_id: str, models: ModelConfig) -> dict[str, int]:
    embedder = load_embedder(models)
    entries = facebank.list_entries(storage, show_id)
    have = {(e.kind, e.cast_id, e.label, e.photo, e.face_id, e.ep_id, e.run_id) for e in entries if e.embedding_model == embedder.name}
    embedded = no_chip = 0
    for e in entries:
        if e.embedding_model == embedder.name or (e.kind, e.cast_id, e.label, e.photo, e.face_id, e.ep_id, e.run_id) in have:
            continue
        if not e.chip_key or not storage.exists(e.chip_key):
            no_chip += 1
            continue
        chip_jpeg = storage.read_bytes(e.chip_key)
        chip = np.asarray(cv2.imdecode(np.frombuffer(chip_jpeg, np.uint8), cv2.IMREAD_COLOR))
        vector = embedder.embed(chip[None])[0]
        entry_id = (
            f"{e.entry_id[:2]}{facebank._digest(e.entry_id, embedder.name)[:20]}"
            if e.source == "photo"
            else e.entry_id[:-16] + facebank._digest(e.entry_id, embedder.name)[:16]
        )
        new = e.model_copy(update={"entry_id": entry_id, "embedding_model": embedder.name, "embedding": [round(float(v), 6) for v in vector], "chip_key": None})
        facebank.write_entry(storage, show_id, new, chip_jpeg)
        embedded += 1
    return {"embedded": embedded, "no_chip": no_chip}
