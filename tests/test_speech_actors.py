"""The long-running speech actors (:mod:`actors.speech_actors`): warm models shared by every run, the
audio stage's stretches spread over them in order, and a failure or a cancel that stops the stage."""

from __future__ import annotations

import os
import sys
import time

import pytest

from actors.models.speech import missing_speech_models

needs_windows_models = pytest.mark.skipif(bool(missing_speech_models("windows")), reason="the windows method's speech models are not installed")


def _where(models, seconds: float, label: int) -> tuple[int, int, int]:
    """(label, the actor's process, its loaded models), after ``seconds`` of work."""
    time.sleep(seconds)
    return label, os.getpid(), id(models)


def _fail(models, label: int) -> int:
    if label == 3:
        raise ValueError(f"stretch {label} is unreadable")
    return label


@pytest.fixture(scope="module")
def pools(ray_cluster):
    from actors.speech_actors import start_speech_pool

    ray_cluster.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the work functions above travel by value
    return {work.__name__: start_speech_pool("windows", work) for work in (_where, _fail)}


@needs_windows_models
def test_stretches_run_on_every_actor_in_order_with_models_loaded_once(pools):
    from actors.speech_actors import map_on_pool, start_speech_pool

    pool = pools["_where"]
    assert len(pool) == 2  # one per CPU of the 2-CPU test cluster
    calls = [(0.3 if k == 0 else 0.05, k) for k in range(7)]  # the first one slow: the other actor takes the rest meanwhile
    results = map_on_pool(pool, calls)
    assert [label for label, _, _ in results] == list(range(7))
    processes = {pid for _, pid, _ in results}
    assert len(processes) == 2
    assert sum(pid == results[0][1] for _, pid, _ in results) < 4  # the slow call did not hold the others up
    again = map_on_pool(start_speech_pool("windows", _where), calls)  # the next run finds the same actors, models warm
    assert {(pid, models) for _, pid, models in again} == {(pid, models) for _, pid, models in results}


@needs_windows_models
def test_a_failing_stretch_fails_the_map_with_its_own_error(pools):
    from actors.speech_actors import map_on_pool

    with pytest.raises(ValueError, match="stretch 3 is unreadable"):
        map_on_pool(pools["_fail"], [(1,), (3,)])


@needs_windows_models
def test_a_cancel_stops_the_map_before_the_remaining_stretches(pools):
    from actors.speech_actors import map_on_pool
    from pipelines.stages.base import Canceled

    ran: list[int] = []

    def check() -> None:  # the run was canceled while the first stretch ran
        ran.append(1)
        raise Canceled("canceled")

    started = time.time()
    with pytest.raises(Canceled):
        map_on_pool(pools["_where"], [(0.2, k) for k in range(20)], check)
    assert len(ran) == 1 and time.time() - started < 2.0  # 20 calls would take 2 s on two actors
