"""Pipeline jobs: each runs in a detached, named Ray actor, so it survives an API restart and shows in
the Ray dashboard as ``job:{job_type}:{ep_id}:{job_id}``. Progress and outcome go to the SQLite job
registry; the API only reads it.

Every job actor is pinned to the head node (``node:__internal_head__``), beside the API replicas, so the
SQLite registry they share is one node-local file on a cluster too; the heavy work a job drives (Ray
Data detectors, embedder actors) still runs anywhere.

A job and its run's stage markers always agree: whoever ends a job from outside (cancel after the grace
period, the watchdog finding its actor gone, a server shutting down) also settles the markers the job
left ``running``.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from typing import Any, Optional

import ray

from actors import NAMESPACE
from pipelines.schemas import Progress, StageName, StageState
from pipelines.service import RunLayout, metrics, settle_running_markers
from pipelines.storage import Storage, open_storage

from .state import FINAL_STATES, StateStore

CANCEL_GRACE_S = 5.0
PROGRESS_EVERY_S = 0.5
WATCHDOG_EVERY_S = 5.0
STARTUP_GRACE_S = 10.0
"""A job this young may not have registered its actor yet; the watchdog leaves it alone."""
HEAD_NODE_RESOURCE = "node:__internal_head__"
NON_SECRET_ENV = ("S3_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE")
"""What a job actor's runtime env may carry. Credentials come from the node itself (environment at
``ray start``, instance role, shared files): a runtime env is visible in the Ray dashboard."""

JOB_STAGES: dict[str, list[StageName]] = {
    "detect_track": [StageName.detect_track],
    "faces_embed": [StageName.faces_embed],
    "cluster": [StageName.cluster, StageName.naming],
    "naming": [StageName.naming],
    "screen_time_analyze": [StageName.naming, StageName.audio, StageName.screentime],
    "screentime": [StageName.naming, StageName.audio, StageName.screentime],
    "audio": [StageName.audio],
    "episode_cleanup": [StageName.faces_embed, StageName.cluster, StageName.naming, StageName.audio, StageName.screentime],
}


@ray.remote(num_cpus=0, max_restarts=0, max_concurrency=4)  # type: ignore[call-overload]  # Ray's stubs lack max_concurrency
class JobActor:
    """Runs one job. It holds its job from construction (a detached actor's creation outlives the replica
    that asked for it), so ``run`` needs no arguments and may be called again by any replica: only the
    first call works. A ``run`` call belongs to the replica that sent it and dies with it; when an API
    restart lands between the actor's creation and that call, the job would stay queued forever, so
    the watchdog calls ``run`` again on every job still queued after the start-up grace."""

    def __init__(self, db_path: str, data_uri: str, job: dict[str, Any]):
        self.store = StateStore(db_path)
        self.storage = open_storage(data_uri)
        self.cancel_event = threading.Event()
        self.job = job
        self._started = False
        self._start_lock = threading.Lock()

    def cancel(self) -> None:
        self.cancel_event.set()

    def pid(self) -> int:
        """The actor's process id (for operators and tests that kill it as the OOM killer would)."""
        return os.getpid()

    def run(self) -> None:
        from pipelines.service import Canceled, run_pipeline

        with self._start_lock:
            if self._started:
                return
            self._started = True
        job = self.job
        job_id = job["job_id"]
        last: dict[str, Any] = {"t": 0.0, "stage": None}

        def progress(stage: StageName, done: float, total: float, **info: Any) -> None:
            now = time.time()
            if stage == last["stage"] and now - last["t"] < PROGRESS_EVERY_S and done < total:
                return
            last.update(t=now, stage=stage)
            p = Progress(phase=stage.value, step=str(info.get("step", "")), frames_done=int(done), frames_total=int(total), fps_infer=info.get("fps_infer"))
            self.store.update_job(job_id, progress=p.model_dump())

        try:
            self.store.update_job(job_id, state=StageState.running.value, progress=Progress(phase="starting").model_dump())
            if self.store.get_job(job_id)["state"] in FINAL_STATES:  # type: ignore[index]  # canceled before it started
                return
            result = run_pipeline(
                storage=self.storage,
                ep_id=job["ep_id"],
                run_id=job["run_id"],
                video=job.get("video"),
                profile=job.get("profile"),
                overrides=job.get("overrides") or {},
                stages=[StageName(s) for s in job["stages"]],
                force=bool(job.get("force")),
                progress=progress,
                cancel_event=self.cancel_event,
            )
            summary = {
                "stages": [{"stage": o.stage.value, "action": o.action, "seconds": round(o.seconds, 2), "counts": o.counts} for o in result.outcomes],
                "manifests": result.manifests,
            }
            self.store.update_job(job_id, state=StageState.succeeded.value, result=summary)
        except Canceled:
            self.store.update_job(job_id, state=StageState.canceled.value, error="canceled")
        except BaseException as exc:  # noqa: BLE001 - recorded in the registry
            self.store.update_job(job_id, state=StageState.failed.value, error=f"{type(exc).__name__}: {exc}"[:4000])
        finally:
            ray.actor.exit_actor()


def actor_name(job_type: str, ep_id: str, job_id: str) -> str:
    return f"job:{job_type}:{ep_id}:{job_id}"


def new_job_id() -> str:
    return f"job-{uuid.uuid4().hex[:12]}"


def job_runtime_env(environ: Optional[dict[str, str]] = None, s3_endpoint: str | None = None) -> dict[str, Any]:
    """The runtime env of a job actor: non-secret S3 settings only."""
    env = os.environ if environ is None else environ
    passed = {k: env[k] for k in NON_SECRET_ENV if env.get(k)}
    if s3_endpoint:
        passed["S3_ENDPOINT_URL"] = s3_endpoint
    return {"env_vars": passed} if passed else {}


def job_actor_options(name: str, s3_endpoint: str | None = None) -> dict[str, Any]:
    options: dict[str, Any] = {"name": name, "namespace": NAMESPACE, "lifetime": "detached", "resources": {HEAD_NODE_RESOURCE: 0.001}}
    runtime_env = job_runtime_env(s3_endpoint=s3_endpoint)
    if runtime_env:
        options["runtime_env"] = runtime_env
    return options


def launch(store: StateStore, job: dict[str, Any], spec: dict[str, Any], *, db_path: str, data_uri: str, s3_endpoint: str | None) -> None:
    """Start the job's actor; a job whose actor cannot start is failed at once, with the reason."""
    try:
        actor = JobActor.options(**job_actor_options(job["actor_name"], s3_endpoint)).remote(db_path, data_uri, spec)  # type: ignore[attr-defined]  # ray.remote classes gain .options at run time
        actor.run.remote()
    except Exception as exc:  # noqa: BLE001 - recorded, then re-raised for the caller's 503
        store.update_job(job["job_id"], state=StageState.failed.value, error=f"could not start the job actor: {exc}"[:4000])
        raise


def _actor(name: str):
    try:
        return ray.get_actor(name, namespace=NAMESPACE)
    except ValueError:
        return None


def end_job(store: StateStore, storage: Storage, job: dict[str, Any], state: StageState, reason: str) -> dict[str, Any]:
    """End a job from outside its actor (which is gone): the job and its run's running markers together."""
    store.update_job(job["job_id"], state=state.value, error=reason)
    fresh = store.get_job(job["job_id"]) or job
    settle_running_markers(storage, RunLayout(job["ep_id"], job["run_id"]), StageState(fresh["state"]), fresh.get("error") or reason)
    return fresh


def cancel_job(store: StateStore, storage: Storage, job_id: str) -> dict[str, Any]:
    job = store.get_job(job_id)
    assert job is not None
    if job["state"] in FINAL_STATES:
        return job
    actor = _actor(job["actor_name"])
    if actor is not None:
        actor.cancel.remote()
    deadline = time.time() + CANCEL_GRACE_S
    while time.time() < deadline:
        fresh = store.get_job(job_id)
        if fresh and fresh["state"] in FINAL_STATES:
            return fresh
        time.sleep(0.2)
    actor = _actor(job["actor_name"])
    if actor is not None:
        ray.kill(actor, no_restart=True)
    return end_job(store, storage, job, StageState.canceled, "canceled (job actor stopped)")


def reap_lost_jobs(store: StateStore, storage: Storage, now: float | None = None) -> int:
    """Fail every in-flight job whose actor is gone (killed, out of memory, its node lost), and start
    again every job still queued whose actor is there (its first start was lost)."""
    from datetime import datetime, timezone

    now = time.time() if now is None else now
    lost = 0
    for state in (StageState.queued.value, StageState.running.value):
        for job in store.list_jobs(state=state, limit=None):
            created = datetime.strptime(job["created_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)  # utc_now()'s format
            if now - created.timestamp() < STARTUP_GRACE_S:
                continue
            actor = _actor(job["actor_name"])
            if actor is not None:
                if state == StageState.queued.value:
                    actor.run.remote()  # its first run call may have died with the replica that sent it (see JobActor)
                continue
            time.sleep(0.5)  # the actor may have been finishing its last write
            fresh = store.get_job(job["job_id"])
            if fresh and fresh["state"] not in FINAL_STATES:
                end_job(store, storage, fresh, StageState.failed, "lost: the job actor died (killed, out of memory, or its node was lost)")
                lost += 1
    return lost


def fail_in_flight(store: StateStore, storage: Storage, reason: str) -> int:
    """A server that owns its Ray is stopping: every job still in flight dies with it."""
    n = 0
    for state in (StageState.queued.value, StageState.running.value):
        for job in store.list_jobs(state=state, limit=None):
            end_job(store, storage, job, StageState.failed, reason)
            n += 1
    return n


class Watchdog:
    """A daemon thread that reaps lost jobs every ``WATCHDOG_EVERY_S`` (so within ~15 s of a kill), and
    reports the jobs per state as a metric (``screenalytics_jobs``)."""

    def __init__(self, store: StateStore, storage: Storage, every_s: float = WATCHDOG_EVERY_S):
        self.store, self.storage, self.every_s = store, storage, every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="screenalytics-job-watchdog", daemon=True)

    def start(self) -> Watchdog:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                reap_lost_jobs(self.store, self.storage)
                metrics.jobs_by_state({state: self.store.count_jobs(state=state) for state in metrics.JOB_STATES})
            except Exception:  # noqa: BLE001 - a watchdog must outlive one bad pass
                import logging

                logging.getLogger(__name__).exception("job watchdog pass failed")
