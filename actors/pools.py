"""Sizing of the model actor pools from the cluster's resources.

Actors ask for fractional CPUs: on a 2-CPU node, Ray Data class UDFs at the default ``num_cpus=1``
hold both CPUs and starve the decode tasks (a silent deadlock). With a GPU in the cluster, each model
actor asks for a fraction of one so the detector and embedder pools share it.
"""

from __future__ import annotations

from dataclasses import dataclass

import ray

ACTOR_CPU_FRACTION = 0.5
GPU_FRACTION = 0.25


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
    on_ort = model_config.get("backend") == "insightface" or model_config.get("runtime") == "onnxruntime"
    return on_ort and model_config.get("device") != "cpu" and ray.cluster_resources().get("GPU", 0) > 0


def actor_pool(requested: int | None = None, use_gpu: bool | None = None) -> PoolSpec:
    resources = ray.cluster_resources()
    cpus = float(resources.get("CPU", 1))
    gpus = float(resources.get("GPU", 0))
    gpu = gpus > 0 if use_gpu is None else use_gpu
    if gpu:
        size = requested or max(1, int(gpus / GPU_FRACTION / 2))
        return PoolSpec(size=size, num_cpus=ACTOR_CPU_FRACTION, num_gpus=GPU_FRACTION)
    size = requested or max(1, int(cpus))
    return PoolSpec(size=size, num_cpus=ACTOR_CPU_FRACTION, num_gpus=0.0)


