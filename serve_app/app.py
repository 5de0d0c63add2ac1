"""The Ray Serve deployment of the API. ``serve run serve_app.app:app`` or ``screenalytics serve``."""

from __future__ import annotations

from ray import serve

from .api import ApiSettings, build_app


@serve.deployment(ray_actor_options={"num_cpus": 0.25}, max_ongoing_requests=64)
@serve.ingress()
class ScreenalyticsAPI:
    """Builds the FastAPI app inside the replica, so it holds its own state store and storage."""

    def __init__(self, data_dir: str | None = None):
        from . import jobs

        self.settings = ApiSettings.from_env(data_dir)
        self._api = build_app(self.settings)
        jobs.reconcile(self._api.state.store)

    def __serve_build_asgi_app__(self):
        return self._api


app = ScreenalyticsAPI.bind()


def deployment(data_dir: str | None = None, env: dict[str, str] | None = None):
    """The app bound to a data dir; ``env`` (e.g. S3 settings) is set in the replica's environment."""
    if env:
        return ScreenalyticsAPI.options(ray_actor_options={"num_cpus": 0.25, "runtime_env": {"env_vars": env}}).bind(data_dir)
    return ScreenalyticsAPI.bind(data_dir)
