"""Pipeline jobs: each runs in a detached, named Ray actor, so it survives an API restart and shows
in the Ray dashboard as ``job:{job_type}:{ep_id}:{job_id}``. Progress and outcome go to the SQLite
job registry; the API only reads it.

Cancel sets the run's cancel event (the pipeline stops at its next batch); if the job has not ended
within ``CANCEL_GRACE_S``, the actor is killed, which also ends the Ray Data actors it owns.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import ray

from pipelines.schemas import Progress, StageName, StageState

from .state import FINAL_STATES, StateStore

NAMESPACE = "screenalytics"
CANCEL_GRACE_S = 5.0
PROGRESS_EVERY_S = 0.5

JOB_STAGES: dict[str, list[StageName]] = {
    "detect_track": [StageName.detect_track],
    "faces_embed": [StageName.faces_embed],
    "cluster": [StageName.cluster],
    "screen_time_analyze": [StageName.screentime],
    "screentime": [StageName.screentime],
    "episode_cleanup": [StageName.faces_embed, StageName.cluster, StageName.screentime],
    "episode_run": list(StageName),
}


@ray.remote(num_cpus=0, max_restarts=0, max_concurrency=4)
class JobActor:
    def __init__(self, db_path: str, data_uri: str):
        from pipelines.storage import open_storage

        self.store = StateStore(db_path)
        self.storage = open_storage(data_uri)
        self.cancel_event = threading.Event()

    def cancel(self) -> None:
        self.cancel_event.set()

    def run(self, job: dict[str, Any]) -> None:
        from pipelines.runner import run_pipeline
        from pipelines.stages.base import Canceled

        job_id = job["job_id"]
        last = {"t": 0.0, "stage": None}

        def progress(stage: StageName, done: float, total: float, **info: Any) -> None:
            now = time.time()
            if stage == last["stage"] and now - last["t"] < PROGRESS_EVERY_S and done < total:
                return
            last.update(t=now, stage=stage)
            p = Progress(
                phase=stage.value,
                step=str(info.get("step", "")),
                frames_done=int(done),
                frames_total=int(total),
                fps_infer=info.get("fps_infer"),
            )
            self.store.update_job(job_id, progress=p.model_dump())

        self.store.update_job(job_id, state=StageState.running.value, progress=Progress(phase="starting").model_dump())
        try:
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


PASSED_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_PROFILE", "S3_ENDPOINT_URL")


def submit_job(store: StateStore, db_path: str, data_uri: str, *, s3_endpoint: str | None = None, job_type: str, ep_id: str, run_id: str, video: str | None,
               profile: str | None, overrides: dict, force: bool, requested: dict) -> dict[str, Any]:
    job_id = f"job-{uuid.uuid4().hex[:12]}"
    name = actor_name(job_type, ep_id, job_id)
    job = store.create_job(job_id, ep_id, run_id, job_type, requested, name)
    spec = {
        "job_id": job_id,
        "ep_id": ep_id,
        "run_id": run_id,
        "video": video,
        "profile": profile,
        "overrides": overrides,
        "force": force,
        "stages": [s.value for s in JOB_STAGES[job_type]],
    }
    import os

    env = {k: os.environ[k] for k in PASSED_ENV if os.environ.get(k)}
    if s3_endpoint:
        env["S3_ENDPOINT_URL"] = s3_endpoint
    options: dict[str, Any] = {"name": name, "namespace": NAMESPACE, "lifetime": "detached"}
    if env:
        options["runtime_env"] = {"env_vars": env}
    actor = JobActor.options(**options).remote(db_path, data_uri)
    actor.run.remote(spec)
    return job


def _actor(name: str):
    try:
        return ray.get_actor(name, namespace=NAMESPACE)
    except ValueError:
        return None


def cancel_job(store: StateStore, job_id: str) -> dict[str, Any]:
    job = store.get_job(job_id)
    assert job is not None
    if job["state"] in FINAL_STATES:
        return job
    actor = _actor(job["actor_name"])
    if actor is not None:
        actor.cancel.remote()
    deadline = time.time() + CANCEL_GRACE_S
    while time.time() < deadline:
        job = store.get_job(job_id)
        if job and job["state"] in FINAL_STATES:
            return job
        time.sleep(0.2)
    actor = _actor(job["actor_name"]) if job else None
    if actor is not None:
        ray.kill(actor, no_restart=True)
    store.update_job(job_id, state=StageState.canceled.value, error="canceled (job actor stopped)")
    return store.get_job(job_id)  # type: ignore[return-value]


def reconcile(store: StateStore) -> int:
    """After an API (re)start: jobs marked queued/running whose actor is gone can never finish."""
    lost = 0
    for state in (StageState.queued.value, StageState.running.value):
        for job in store.list_jobs(state=state):
            if _actor(job["actor_name"]) is None:
                time.sleep(0.5)  # the actor may be finishing its last write
                fresh = store.get_job(job["job_id"])
                if fresh and fresh["state"] not in FINAL_STATES:
                    store.update_job(job["job_id"], state=StageState.failed.value, error="lost: the job actor is gone")
                    lost += 1
    return lost
