"""The facebank actor: one long-running, named actor per show (``facebank:{show}`` in the dashboard)
holding the show's reference faces in a FAISS index, shared by every episode of a catalog run, by
CLI runs on the cluster and by the API.

It keeps no state of its own: before each query it lists the bank in storage (one listing) and reads
only the entries it has not seen, so a face added by anyone is used at once, and a restarted actor
rebuilds itself from storage. The storage side is injected (``source``) so this module knows nothing
of the data dir's layout.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional

import faiss
import numpy as np
import ray

from actors import NAMESPACE

EXACT_UP_TO = 20_000
"""Banks up to this many faces are scored exactly: one matrix product, then the best face per label
(a 1,000 x 2,000 query takes ~6 ms on one core). Larger banks are searched through the FAISS index for
the ``TOP_ENTRIES`` nearest faces per query, which can miss labels beyond the first few dozen."""
TOP_ENTRIES = 256

Row = Optional[tuple[str, list[float]]]  # (label, embedding), None for a face of another embedder
BankSource = Callable[[str, str, str, frozenset[str]], tuple[list[str], dict[str, Row]]]
"""(data dir URI, show, embedding model, entry ids already loaded) -> (current entry ids, new rows)."""


class FacebankIndex:
    """Label scores from a FAISS inner-product index over unit embeddings (cosine similarity)."""

    def __init__(self, labels: list[str], matrix: np.ndarray):
        self.labels = labels
        self.index: Optional[faiss.Index] = None
        if len(labels):
            x = np.ascontiguousarray(matrix, dtype=np.float32)
            x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
            self.index = faiss.IndexFlatIP(x.shape[1])
            self.index.add(x)
            # rows grouped by label, for the exact path: the best face per label is a max over a run
            self.order = np.argsort(np.asarray(labels), kind="stable")
            self.sorted_x = x[self.order]
            sorted_labels = [labels[i] for i in self.order]
            self.starts = np.asarray([k for k in range(len(sorted_labels)) if k == 0 or sorted_labels[k] != sorted_labels[k - 1]])
            self.label_names = [sorted_labels[k] for k in self.starts]

    def __len__(self) -> int:
        return len(self.labels)

    def scores(self, vectors: np.ndarray, top_labels: int = 8) -> list[dict[str, float]]:
        """Per query vector: the best similarity to each label's faces, for its ``top_labels`` best labels."""
        q = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(vectors), -1)
        if self.index is None or len(q) == 0:
            return [{} for _ in range(len(q))]
        if q.shape[1] != self.index.d:
            raise ValueError(f"query vectors have {q.shape[1]} dimensions, the facebank {self.index.d}")
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        if len(self.labels) <= EXACT_UP_TO:
            best_per_label = np.maximum.reduceat(q @ self.sorted_x.T, self.starts, axis=1)
            k = min(top_labels, best_per_label.shape[1])
            top = np.argsort(-best_per_label, axis=1)[:, :k]
            return [{self.label_names[j]: round(float(row[j]), 4) for j in cols} for row, cols in zip(best_per_label, top)]
        sims, rows = self.index.search(q, min(len(self.labels), TOP_ENTRIES))
        out = []
        for srow, rrow in zip(sims, rows):
            best: dict[str, float] = {}
            for s, r in zip(srow, rrow):
                if r >= 0 and self.labels[r] not in best:
                    best[self.labels[r]] = round(float(s), 4)
                    if len(best) >= top_labels:
                        break
            out.append(best)
        return out


@ray.remote(max_restarts=-1, max_task_retries=3, num_cpus=0)
class FacebankActor:
    def __init__(self, show_id: str, source: BankSource):
        self.show_id = show_id
        self.source = source
        self.rows: dict[tuple[str, str], dict[str, Row]] = {}  # (uri, model) -> entry id -> row
        self.indexes: dict[tuple[str, str], FacebankIndex] = {}
        self.models: dict[str, Any] = {}

    def _index(self, uri: str, model: str) -> FacebankIndex:
        key = (uri, model)
        rows = self.rows.setdefault(key, {})
        current, new = self.source(uri, self.show_id, model, frozenset(rows))
        changed = bool(new) or set(current) != set(rows) or key not in self.indexes
        rows.update(new)
        for gone in set(rows) - set(current):
            del rows[gone]
        if changed:
            usable = [r for r in rows.values() if r is not None]
            matrix = np.asarray([v for _, v in usable], np.float32) if usable else np.zeros((0, 1), np.float32)
            self.indexes[key] = FacebankIndex([label for label, _ in usable], matrix)
        return self.indexes[key]

    def scores(self, uri: str, model: str, vectors: np.ndarray, top_labels: int = 8) -> dict[str, Any]:
        index = self._index(uri, model)
        return {"faces": len(index), "scores": index.scores(vectors, top_labels)}

    def size(self, uri: str, model: str) -> int:
        return len(self._index(uri, model))

    def node_id(self) -> str:
        """The node this actor runs on (operators and the node-loss test ask where it went)."""
        return str(ray.get_runtime_context().get_node_id())

    def embed_photo(self, model_config: dict[str, Any], image: np.ndarray, score_threshold: float) -> list[dict[str, Any]]:
        """Every face in a photo, detected, aligned and embedded with the pipeline's models."""
        from actors.models.photo import PhotoModels

        key = repr(sorted(model_config.items()))
        if key not in self.models:
            self.models[key] = PhotoModels.load(model_config)
        return self.models[key].faces(image, score_threshold)


def facebank_actor(show_id: str, source: BankSource) -> ray.actor.ActorHandle:
    """Get or create the show's facebank actor (detached: it outlives the run that started it)."""
    return FacebankActor.options(  # type: ignore[attr-defined]  # ray.remote classes gain .options at run time
        name=f"facebank:{show_id}", namespace=NAMESPACE, get_if_exists=True, lifetime="detached"
    ).remote(show_id, source)
