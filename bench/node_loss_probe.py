"""Run as a Ray job on the cluster, for :mod:`bench.node_loss`: print where the show's facebank actor lives
and whether it answers (``FACEBANK {"node_id": ..., "state": ...}``); with ``place NODE_ID``, first
(re)start it on that node, as the scheduler may well have put it there (its restarts may go anywhere)."""

from __future__ import annotations

import json
import sys

import ray

from actors.facebank_actor import NAMESPACE


def place(show: str, node_id: str) -> None:
    import time

    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from actors.facebank_actor import FacebankActor
    from pipelines.shows.bank import bank_source

    name = f"facebank:{show}"
    try:
        ray.kill(ray.get_actor(name, namespace=NAMESPACE), no_restart=True)
    except ValueError:
        pass
    deadline = time.time() + 60
    while time.time() < deadline:  # the name is free once the killed actor is gone
        try:
            ray.get_actor(name, namespace=NAMESPACE)
            time.sleep(0.2)
        except ValueError:
            break
    while True:  # the killed actor's name may take a moment more to be released
        try:
            actor = FacebankActor.options(  # type: ignore[attr-defined]
                name=name, namespace=NAMESPACE, lifetime="detached", scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=True)
            ).remote(show, bank_source)
            break
        except ValueError:
            if time.time() > deadline:
                raise
            time.sleep(0.5)
    ray.get(actor.__ray_ready__.remote(), timeout=60)


def main(show: str, node_id: str | None = None) -> None:
    ray.init()
    if node_id:
        place(show, node_id)
    name = f"facebank:{show}"
    try:
        actor = ray.get_actor(name, namespace=NAMESPACE)
        node_id = ray.get(actor.node_id.remote(), timeout=60)
    except Exception as exc:  # noqa: BLE001 - reported: no live actor
        print(f"FACEBANK null  # {type(exc).__name__}: {exc}")
        return
    print("FACEBANK " + json.dumps({"node_id": node_id, "state": "ALIVE"}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[3] if len(sys.argv) > 3 and sys.argv[2] == "place" else None)
