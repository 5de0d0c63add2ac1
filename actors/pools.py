"""Sizing of the model actor pools from the cluster's resources.

Detector actors decode their own segment and run the detector on its sampled frames, so they are
bound by decoding (CPU) first: the pool has one actor per CPU with or without GPUs. On a GPU
cluster each of them also asks for a slice of the GPUs, ``DETECTOR_GPU_SHARE`` of them split across
the cluster's CPUs, and the embedder actors share the rest (``EMBEDDER_GPU_SHARE``), so both pools fit on one
GPU. Knobs:

- ``ACTOR_CPU_FRACTION`` (0.5): a Ray Data class UDF at the default ``num_cpus=1`` holds a whole CPU
  and, on a 2-CPU node, starves the tasks that feed it (a silent deadlock). Half a CPU lets the pool
  take one actor per CPU and leaves Ray Data its scheduling room; the OS shares the cores.
- ``DETECTOR_GPU_SHARE`` / ``EMBEDDER_GPU_SHARE`` (0.5 / 0.5 of each GPU): fractions are a Ray
  scheduling device, not a memory or compute limit. Each actor holds its own CUDA context and
  onnxruntime arena (about 0.5-1 GB), so a 16-CPU node puts ~16 contexts on its GPU: fine for
  24-80 GB cards, the thing to lower with ``detect_track.num_detectors`` on a small one.
- ``GPU_EMBEDDERS_PER_GPU`` (2): embedding is a small share of the work (one chip per face per
  track sample); two actors per GPU overlap one's JPEG decoding with the other's inference.
"""

from __future__ import annotations

from dataclasses import dataclass

import ray

ACTOR_CPU_FRACTION = 0.5
DETECTOR_GPU_SHARE = 0.5
EMBEDDER_GPU_SHARE = 0.5
GPU_EMBEDDERS_PER_GPU = 2


@dataclass(frozen=True)
class PoolSpec:
    size: int
    num_cpus: float
    num_gpus: float

    def map_batches_kwargs(self) -> dict:
        from ray.data import ActorPoolStrategy

        kwargs: dict = {"compute": ActorPoolStrategy(size=self.size), "num_cpus": self.num_cpus}
        if self.num_gpus:
            kwargs["num_gpus"] = self.num_gpus
        return kwargs


def wants_gpu(model_config: dict) -> bool:
    """Model actors ask for a GPU fraction when the cluster has GPUs and the models can use one:
    onnxruntime (either backend; its CUDA provider) and a device other than ``cpu``."""
    from .models.config import ModelConfig, effective_runtime

    on_ort = model_config.get("backend") == "insightface" or effective_runtime(ModelConfig(**model_config)) == "onnxruntime"
    return on_ort and model_config.get("device") != "cpu" and ray.cluster_resources().get("GPU", 0) > 0


def _gpu_slice(share: float, gpus: float, actors: int) -> float:
    """Each actor's GPU fraction, rounded down to Ray's 1e-4 resource grain (never above one GPU)."""
    return max(1e-4, min(1.0, int(share * gpus / actors * 10_000) / 10_000))


def actor_pool(requested: int | None = None, use_gpu: bool | None = None, resources: dict[str, float] | None = None) -> PoolSpec:
    """The detector pool: one actor per CPU (or ``requested``), each with a GPU slice when ``use_gpu``.

    The slice is the detectors' GPU share over the cluster's CPUs, not over this pool: concurrent
    episodes of a batch each get ``CPUs / workers`` detectors, and together they must still fit.
    ``resources`` defaults to the running cluster's.
    """
    resources = resources if resources is not None else ray.cluster_resources()
    cpus = float(resources.get("CPU", 1))
    gpus = float(resources.get("GPU", 0))
    gpu = gpus > 0 if use_gpu is None else use_gpu
    size = requested or max(1, int(cpus))
    return PoolSpec(size=size, num_cpus=ACTOR_CPU_FRACTION, num_gpus=_gpu_slice(DETECTOR_GPU_SHARE, gpus, max(size, int(cpus))) if gpu and gpus else 0.0)


def embedder_pool(requested: int | None = None, use_gpu: bool = False, resources: dict[str, float] | None = None) -> PoolSpec:
    """The embedder pool: ``GPU_EMBEDDERS_PER_GPU`` per GPU when ``use_gpu``, else one per CPU."""
    resources = resources if resources is not None else ray.cluster_resources()
    gpus = float(resources.get("GPU", 0))
    if use_gpu and gpus:
        size = requested or max(1, int(gpus * GPU_EMBEDDERS_PER_GPU))
        return PoolSpec(size=size, num_cpus=0.25, num_gpus=_gpu_slice(EMBEDDER_GPU_SHARE, gpus, size))
    return PoolSpec(size=requested or max(1, int(resources.get("CPU", 1))), num_cpus=0.25, num_gpus=0.0)


SPEECH_POOL_MAX = 8
"""At most this many speech actors (:mod:`actors.speech_actors`): an episode has one stretch a minute,
and each actor holds its models (about 150 MB) for as long as the cluster runs."""


def speech_pool_size(resources: dict[str, float] | None = None) -> int:
    """One speech actor per CPU of the cluster, at most ``SPEECH_POOL_MAX``."""
    resources = resources if resources is not None else ray.cluster_resources()
    return max(1, min(SPEECH_POOL_MAX, int(resources.get("CPU", 1))))
