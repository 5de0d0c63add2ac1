"""What every route depends on: the settings, the data dir and the state store, with the lookups that
turn ids into rows or a 404. Routes receive it as a FastAPI dependency (``Ctx``), so a handler runs the
same under Ray Serve, uvicorn or a TestClient."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Optional

from fastapi import Depends, HTTPException, Query, Request
from fastapi import Path as PathParam

from pipelines.ids import (
    CAST_ID_PATTERN,
    EP_ID_PATTERN,
    IDENTITY_ID_PATTERN,
    RUN_ID_PATTERN,
    SHOW_SLUG_PATTERN,
    parse_ep_id,
)
from pipelines.schemas import STAGE_ORDER
from pipelines.service import DEFAULT_RUN_ID, ENTRY_ID_PATTERN, RunLayout, episodes_with_runs, read_marker, roster, runs_prefix, source_video_keys, video_meta
from pipelines.storage import Storage, fetch_to_cache, s3_client

from .models import StageStatus
from .settings import ApiSettings
from .state import StateStore

EP = PathParam(pattern=EP_ID_PATTERN, description="{show}-s{SS}e{EE}")
RUN = PathParam(pattern=RUN_ID_PATTERN)
RUN_PATH = "/episodes/{ep_id}/runs/{run_id}"
"""Where a run's routes live: every operation on a run names it in its path."""
RUN_Q = Query(DEFAULT_RUN_ID, pattern=RUN_ID_PATTERN)
SHOW = PathParam(pattern=SHOW_SLUG_PATTERN)
CAST = PathParam(pattern=CAST_ID_PATTERN)
IDENTITY = PathParam(pattern=IDENTITY_ID_PATTERN)
VOICE = PathParam(pattern=r"^voice_\d{2,4}$")
ENTRY = PathParam(pattern=ENTRY_ID_PATTERN)
JOB_ID = PathParam(pattern=r"^job-[0-9a-f]{12}$")


@dataclass
class ApiContext:
    settings: ApiSettings
    storage: Storage
    store: StateStore

    def move_legacy_roster(self) -> None:
        """Shows and cast an older version kept in SQLite move to the data dir (once; idempotent)."""
        shows, cast = self.store.legacy_roster()
        for show in shows:
            roster.create_show(self.storage, show["show_id"], show["name"])
        for member in cast:
            try:
                roster.create_cast(self.storage, member["show_id"], member["cast_id"], member["name"])
            except roster.CastIdTaken:
                continue

    # --- lookups ----------------------------------------------------------------------------------

    def episode(self, ep_id: str) -> dict[str, Any]:
        ep = self.store.get_episode(ep_id)
        if ep is None and self.storage.children(runs_prefix(ep_id)):  # run by the CLI or a catalog
            self.store.adopt_episodes([ep_id])
            ep = self.store.get_episode(ep_id)
        if ep is None:
            raise HTTPException(404, f"Episode {ep_id} not found")
        return ep

    def adopt_episodes(self) -> None:
        """Register every episode that has runs in the data dir: one registry for API, CLI and catalogs."""
        known = {e["ep_id"] for e in self.store.list_episodes()} | self.store.forgotten_episodes()
        self.store.adopt_episodes(episodes_with_runs(self.storage, skip=known))

    def run(self, ep_id: str, run_id: str) -> RunLayout:
        self.episode(ep_id)
        layout = RunLayout(ep_id, run_id)
        if not self.storage.children(layout.manifests):
            raise HTTPException(404, f"Run {run_id} of {ep_id} not found")
        return layout

    def job(self, job_id: str) -> dict[str, Any]:
        job = self.store.get_job(job_id)
        if job is None:
            raise HTTPException(404, f"Job {job_id} not found")
        return job

    def show(self, show_id: str) -> dict[str, Any]:
        show = roster.get_show(self.storage, show_id)
        if show is None:
            raise HTTPException(404, f"Show {show_id} not found")
        return show.model_dump()

    def cast_member(self, show_id: str, cast_id: str) -> dict[str, Any]:
        self.show(show_id)
        member = roster.get_cast(self.storage, show_id, cast_id)
        if member is None:
            raise HTTPException(404, f"Cast member {cast_id} not found in show {show_id}")
        return member.model_dump()

    def cast_names(self, ep_id: str) -> dict[str, str]:
        """Names of the cast of the episode's show."""
        return roster.cast_names(self.storage, parse_ep_id(ep_id).show)

    def stage_statuses(self, layout: RunLayout) -> list[StageStatus]:
        out = []
        for stage in STAGE_ORDER:
            m = read_marker(self.storage, layout, stage)
            out.append(
                StageStatus(
                    stage=stage.value,
                    state=m.state.value if m else None,
                    finished_at=m.finished_at if m else None,
                    counts=dict(m.counts) if m else {},
                    error=m.error if m else None,
                )
            )
        return out

    # --- the episode's video ----------------------------------------------------------------------

    def s3_exists(self, key: str) -> bool:
        if not self.settings.s3_bucket:
            return False
        from botocore.exceptions import ClientError

        try:
            s3_client(self.settings.s3_endpoint).head_object(Bucket=self.settings.s3_bucket, Key=key)
            return True
        except ClientError:
            return False

    def source_video(self, ep: dict[str, Any]) -> Optional[str]:
        """The episode's video: an upload in the data dir, else S3 (v2 key, then v1)."""
        if ep.get("video_key") and self.storage.exists(ep["video_key"]):
            if self.storage.uri.startswith("s3://"):  # readable from every node of a cluster
                return f"{self.storage.uri}/{ep['video_key']}"
            return str(self.storage.local_path(ep["video_key"]))
        for key in source_video_keys(ep["ep_id"]):
            if self.s3_exists(key):
                return f"s3://{self.settings.s3_bucket}/{key}"
        return None

    def video_path(self, ep_id: str, layout: Optional[RunLayout] = None) -> str:
        """The episode's video as a local file; for frames of a run (``layout``), an episode made by the
        CLI without an upload falls back to the file the run recorded, when this machine has it."""
        source = self.source_video(self.episode(ep_id))
        if source is None and layout is not None:
            meta = video_meta(self.storage, layout)
            recorded = meta.path if meta else None
            if recorded and Path(recorded).is_file():
                return recorded
        if source is None:
            raise HTTPException(409, f"episode {ep_id} has no video")
        return str(fetch_to_cache(source))


def get_context(request: Request) -> ApiContext:
    return request.app.state.ctx  # type: ignore[no-any-return]


Ctx = Annotated[ApiContext, Depends(get_context)]
