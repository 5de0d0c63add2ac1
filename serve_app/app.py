"""The Ray Serve deployment of the API. ``serve run serve_app.app:app`` or ``screenalytics serve``.

The replica is pinned to the head node (``node:__internal_head__``) with the job actors, so the SQLite
state they share is one file there (see :mod:`serve_app.jobs`).
"""

from __future__ import annotations

from ray import serve

from .api import build_app
from .jobs import HEAD_NODE_RESOURCE
from .settings import ApiSettings

REPLICA_ENV = {"MALLOC_ARENA_MAX": "2"}
"""glibc gives each of the replica's request threads a malloc arena of its own; with 40 of them the
replica's private memory crept up by ~10 MB a minute under the soak benchmark (no Python object grew:
tracemalloc shows none). Two arenas hold it flat (measured: README, issue notes)."""
REPLICA_OPTIONS = {"num_cpus": 0.25, "resources": {HEAD_NODE_RESOURCE: 0.001}, "runtime_env": {"env_vars": REPLICA_ENV}}
SECRET_MARKERS = ("SECRET", "TOKEN", "PASSWORD", "CREDENTIAL")


@serve.deployment(ray_actor_options=REPLICA_OPTIONS, max_ongoing_requests=64)
@serve.ingress()
class ScreenalyticsAPI:
    """Builds the FastAPI app inside the replica, so it holds its own state store and storage, and runs
    the job watchdog there."""

    def __init__(self, data_dir: str | None = None):
        from . import jobs

        self.settings = ApiSettings.from_env(data_dir)
        self._api = build_app(self.settings)
        ctx = self._api.state.ctx
        jobs.reap_lost_jobs(ctx.store, ctx.storage, now=float("inf"))
        self._watchdog = jobs.Watchdog(ctx.store, ctx.storage).start()

    def __serve_build_asgi_app__(self):
        return self._api

    def __del__(self):
        watchdog = getattr(self, "_watchdog", None)
        if watchdog is not None:
            watchdog.stop()


app = ScreenalyticsAPI.bind()  # type: ignore[attr-defined]  # serve.deployment classes gain .bind/.options at run time


def deployment(data_dir: str | None = None, env: dict[str, str] | None = None):
    """The app bound to a data dir; ``env`` (non-secret settings such as the S3 endpoint and bucket) is
    set in the replica's environment. Secrets are refused here: a runtime env shows in the dashboard;
    give them to the node (its environment, or a token file)."""
    if env:
        secret = sorted(k for k in env if any(m in k.upper() for m in SECRET_MARKERS))
        if secret:
            raise ValueError(f"secrets must not travel in a runtime env (the dashboard shows it): {', '.join(secret)}")
        return ScreenalyticsAPI.options(ray_actor_options={**REPLICA_OPTIONS, "runtime_env": {"env_vars": {**REPLICA_ENV, **env}}}).bind(data_dir)  # type: ignore[attr-defined]  # serve.deployment classes gain .bind/.options at run time
    return ScreenalyticsAPI.bind(data_dir)  # type: ignore[attr-defined]
