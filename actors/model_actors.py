"""Long-running embedder actors: named, loaded once, fed batches of face chips.

The pool is started at the beginning of a run (``start_embedder_pool``) so the model loads while the
detector works. The actors are detached and named, so later runs in the same Ray cluster (the Serve
app, batch jobs, concurrent episodes) find and share them, and an idle cluster keeps its models warm
until it stops.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import ray

from actors import NAMESPACE
from actors.pools import embedder_pool, wants_gpu


@ray.remote(max_restarts=2, max_task_retries=2)  # resources: start_embedder_pool, from actors.pools
class EmbedderActor:
    def __init__(self, model_config: dict[str, Any]):
        from actors.models.config import ModelConfig
        from actors.models.registry import load_embedder

        cv2.setNumThreads(1)
        self.embedder = load_embedder(ModelConfig(**model_config))

    def info(self) -> dict[str, Any]:
        return {"model": self.embedder.name, "dim": self.embedder.dim, "device": self.embedder.device}

    def embed_jpegs(self, chips: list[bytes]) -> np.ndarray:
        images = np.stack([np.asarray(cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR)) for b in chips])
        return self.embedder.embed(images)


def _pool_key(model_config: dict[str, Any]) -> str:
    import hashlib
    import json

    return hashlib.sha1(json.dumps(model_config, sort_keys=True).encode()).hexdigest()[:10]


def start_embedder_pool(model_config: dict[str, Any], size: int | None = None) -> list[ray.actor.ActorHandle]:
    """Get or create the named embedder actors for this model config (non-blocking)."""
    pool = embedder_pool(size, use_gpu=wants_gpu(model_config))
    # Detached: shared by every run, job and the API on the cluster. A non-detached actor would be owned
    # by whichever task created it first and die with it, under the feet of the others.
    options: dict[str, Any] = {"namespace": NAMESPACE, "get_if_exists": True, "lifetime": "detached", "num_cpus": pool.num_cpus}
    if pool.num_gpus:
        options["num_gpus"] = pool.num_gpus
    key = _pool_key(model_config)
    return [EmbedderActor.options(name=f"embedder-{key}-{i}", **options).remote(model_config) for i in range(pool.size)]  # type: ignore[attr-defined]  # ray.remote classes gain .options at run time
