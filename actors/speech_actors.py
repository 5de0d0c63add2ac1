"""Long-running speech actors: each holds one audio method's loaded models (the segmentation model or
the VAD, and the speaker encoder) and runs the audio stage's per-stretch work with them.

The pool is started at the beginning of a run (:func:`start_speech_pool`, beside the embedder pool), so
its models load while the detector works. The actors are detached and named: later runs on the same
cluster (the Serve app, catalog jobs, the next episode) find them warm. On the 10-minute episode, a
fresh Ray worker per stretch cost the stage 0.7 s before its first stretch started and each worker's
model loading another 0.5 s of its first stretch; from a warm pool both are gone.

Resources: the actors ask for no CPU. They are idle but for the audio stage, and holding CPUs would
take them from the face stages' Ray Data pools (on 2 CPUs that starves them: a deadlock). The pool's
size (:func:`actors.pools.speech_pool_size`) bounds how many stretches run at once instead; each
actor runs its models on one thread, one stretch at a time. ``SPREAD`` places them across the nodes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import ray

from actors import NAMESPACE
from actors.pools import speech_pool_size


@ray.remote(num_cpus=0, max_restarts=2, max_task_retries=2)  # a lost node's actor restarts elsewhere; its stretch is retried
class SpeechActor:
    """Holds ``method``'s models and runs ``work(models, *args)`` on them. ``work`` is given at start, so
    its module (the audio stage's, unpickled by reference) is imported while the actor loads, not in
    the stage's first stretch."""

    def __init__(self, method: str, work: Callable[..., Any]):
        from actors.models.speech import load_speech_models

        self.models = load_speech_models(method)
        self.work = work

    def run(self, *args: Any) -> Any:
        """``work(models, *args)``: ``models`` is (the segmentation model or the VAD, the speaker encoder)."""
        return self.work(self.models, *args)


def start_speech_pool(method: str, work: Callable[..., Any], size: int | None = None) -> list[ray.actor.ActorHandle]:
    """Get or create the named speech actors that run ``work`` with ``method``'s models (``segmentation``
    or ``windows``); non-blocking."""
    options: dict[str, Any] = {"namespace": NAMESPACE, "get_if_exists": True, "lifetime": "detached", "scheduling_strategy": "SPREAD"}
    name = f"speech-{method}-{work.__name__}"
    return [SpeechActor.options(name=f"{name}-{i}", **options).remote(method, work) for i in range(size or speech_pool_size())]  # type: ignore[attr-defined]  # ray.remote classes gain .options at run time


def map_on_pool(pool: Sequence[ray.actor.ActorHandle], calls: Sequence[tuple[Any, ...]], check: Callable[[], None] = lambda: None) -> list[Any]:
    """The pool's work for each ``args`` of ``calls``, in order; each actor is given the next call as soon
    as it finishes one, so a slow stretch never holds the others up. ``check`` runs between calls (it
    raises to stop: a cancelled run)."""
    results: list[Any] = [None] * len(calls)
    idle, queue = list(pool), list(enumerate(calls))
    pending: dict[ray.ObjectRef, tuple[int, ray.actor.ActorHandle]] = {}
    while queue or pending:
        while queue and idle:
            index, args = queue.pop(0)
            actor = idle.pop()
            pending[actor.run.remote(*args)] = (index, actor)
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            index, actor = pending.pop(ref)
            results[index] = ray.get(ref)
            idle.append(actor)
        check()
    return results
