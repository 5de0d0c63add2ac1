"""Run a catalog of episodes on a Ray cluster:

    ray job submit --working-dir . -- python -m pipelines.batch --catalog CATALOG [--data-dir D]

CATALOG is a CSV or JSONL file (columns ``ep_id`` and ``video``: a local path or ``s3://`` URI) or an
``s3://bucket/prefix`` to list (keys ``raw/videos/{show}/s{SS}/e{EE}/episode.mp4`` or
``raw/videos/{ep_id}/episode.mp4``, or files named ``{ep_id}.mp4``).

Each episode is one Ray task running the whole pipeline; ``--workers`` episodes run at once and split
the cluster's detector capacity between them. Re-submitting the same catalog redoes nothing finished:
finished stages and finished time segments are reused (see :mod:`pipelines.runner`). A bad episode is
recorded as failed with its reason and does not stop the others. The catalog summary (Parquet and
CSV: ep_id, status, stage seconds, error, screen time) and a long screen-time table are written to
``{data-dir}/catalogs/{name}/``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray

from .ids import InvalidIdError, validate_ep_id
from .layout import catalog_prefix
from .registry import SCREENTIME


@dataclass
class CatalogEntry:
    ep_id: str
    video: str


@dataclass
class EpisodeResult:
    ep_id: str
    status: str  # succeeded | failed
    error: str | None = None
    stage_seconds: dict[str, float] = field(default_factory=dict)
    actions: dict[str, str] = field(default_factory=dict)
    screentime: list[dict[str, Any]] = field(default_factory=list)
    wall_s: float = 0.0
    node_id: str | None = None  # the node whose worker ran it (its last try): how scheduling spread the work


class CatalogError(ValueError):
    pass


def load_catalog(source: str) -> list[CatalogEntry]:
    if source.startswith("s3://"):
        return _catalog_from_s3(source)
    path = Path(source)
    if not path.is_file():
        raise CatalogError(f"catalog not found: {source}")
    text = path.read_text()
    rows = [json.loads(line) for line in text.splitlines() if line.strip()] if path.suffix == ".jsonl" else list(csv.DictReader(io.StringIO(text)))
    entries = []
    for n, row in enumerate(rows, start=1):
        ep_id, video = (row.get("ep_id") or "").strip(), (row.get("video") or row.get("path") or row.get("uri") or "").strip()
        if not ep_id or not video:
            raise CatalogError(f"{source} row {n}: needs ep_id and video")
        if not video.startswith("s3://") and not Path(video).is_absolute():
            video = str((path.parent / video).resolve())
        entries.append(CatalogEntry(ep_id, video))
    return entries


def _catalog_from_s3(uri: str) -> list[CatalogEntry]:
    from .layout import ep_id_of_source_key
    from .storage import parse_s3_uri, s3_client

    bucket, prefix = parse_s3_uri(uri)
    client = s3_client()
    entries: dict[str, CatalogEntry] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            ep_id = ep_id_of_source_key(obj["Key"])
            if ep_id is not None:
                entries.setdefault(ep_id, CatalogEntry(ep_id, f"s3://{bucket}/{obj['Key']}"))
    return [entries[k] for k in sorted(entries)]


LOST_NODE_ATTEMPTS = 4
"""Times an episode is run again in place when what failed it was the cluster (an actor, object or node
lost), not the episode: each try resumes from the finished stages and segments. Ray's own task retry
only covers the episode's own worker dying."""
LOST_NODE_BACKOFF_S = 5.0
"""Wait before the k-th retry: k times this. An actor Ray is restarting elsewhere answers "temporarily
unavailable" for seconds; retrying at once failed all three tries within 18 s in one CI run."""


def lost_to_the_cluster(exc: BaseException) -> bool:
    """Whether ``exc`` (or anything it was raised from) is Ray losing a node, an actor or an object."""
    from .stages.base import exception_chain

    kinds = tuple(
        getattr(ray.exceptions, name)
        for name in (
            "RayActorError",
            "ObjectLostError",
            "WorkerCrashedError",
            "NodeDiedError",
            "OwnerDiedError",
            "LocalRayletDiedError",
            "ActorUnavailableError",
        )
        if hasattr(ray.exceptions, name)
    )
    return any(isinstance(e, kinds) for e in exception_chain(exc))


@ray.remote(num_cpus=0, max_retries=2)  # a dead worker is retried; the retry resumes from finished segments
def run_episode(entry: dict, data_uri: str, profile: str | None, overrides: dict) -> dict:
    """One catalog episode; never raises (a failure is a result)."""
    from . import metrics
    from .runner import run_pipeline
    from .storage import open_storage

    started = time.time()

    try:
        for attempt in range(1, LOST_NODE_ATTEMPTS + 1):
            try:
                result = run_pipeline(storage=open_storage(data_uri), ep_id=entry["ep_id"], video=entry["video"], profile=profile, overrides=overrides)
                break
            except Exception as exc:
                if attempt == LOST_NODE_ATTEMPTS or not lost_to_the_cluster(exc):
                    raise
                print(f"{entry['ep_id']}: {type(exc).__name__} (a node or actor was lost); resuming, attempt {attempt + 1}", flush=True)
                time.sleep(LOST_NODE_BACKOFF_S * attempt)
        report = result.report
        screentime = []
        if report is not None:
            screentime = [{"name": m.name, "cast_id": m.cast_id, "identity_id": None, "seconds": m.visual_s} for m in report.metrics]
            screentime += [
                {"name": i.identity_id, "cast_id": None, "identity_id": i.identity_id, "seconds": i.visual_s} for i in report.identities if i.cast_id is None
            ]
        out = EpisodeResult(
            entry["ep_id"],
            "succeeded",
            None,
            {o.stage.value: round(o.seconds, 3) for o in result.outcomes},
            {o.stage.value: o.action for o in result.outcomes},
            screentime,
        )
    except BaseException as exc:  # noqa: BLE001 - recorded, the catalog goes on
        out = EpisodeResult(entry["ep_id"], "failed", f"{type(exc).__name__}: {exc}"[:2000])
    out.wall_s = round(time.time() - started, 3)
    out.node_id = ray.get_runtime_context().get_node_id()
    metrics.episode_done(out.status)
    return out.__dict__


def write_summary(data_uri: str, name: str, results: list[dict]) -> str:
    """The catalog's files under ``catalogs/{name}/``: ``episodes.{csv,parquet}`` (one row per episode:
    status, error, seconds per stage), ``summary.{csv,parquet}`` (the analyst's tidy table,
    :mod:`pipelines.exports`, for the catalog's episodes) and per show ``season_{show}.{csv,parquet,json}``
    (the same table for every episode of the show in the data dir, and the season summary)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .artifacts import csv_text, read_model
    from .exports import episode_rows, write_tables
    from .layout import RunLayout
    from .runner import DEFAULT_RUN_ID
    from .schemas import STAGE_ORDER, ScreentimeReport
    from .storage import open_storage

    storage = open_storage(data_uri)
    rows = []
    for r in sorted(results, key=lambda r: r["ep_id"]):
        row = {"ep_id": r["ep_id"], "status": r["status"], "error": r["error"], "wall_s": r["wall_s"], "node_id": r.get("node_id")}
        for stage in STAGE_ORDER:
            row[f"{stage.value}_s"] = r["stage_seconds"].get(stage.value)
            row[f"{stage.value}_action"] = r["actions"].get(stage.value)
        rows.append(row)
    columns = list(rows[0]) if rows else ["ep_id", "status", "error"]
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buf)
    base = catalog_prefix(name)
    storage.write_bytes(f"{base}/episodes.parquet", buf.getvalue())
    storage.write_text(f"{base}/episodes.csv", csv_text(columns, rows))
    succeeded = sorted(r["ep_id"] for r in results if r["status"] == "succeeded")
    tidy = []
    for ep_id in succeeded:
        key = SCREENTIME.key(RunLayout(ep_id, DEFAULT_RUN_ID))
        if storage.exists(key):
            tidy += episode_rows(read_model(storage, key, ScreentimeReport))
    write_tables(storage, f"{base}/summary", tidy)
    write_season_tables(storage, base, succeeded)
    return f"{storage.uri}/{base}"


def write_season_tables(storage, base: str, ep_ids: list[str]) -> None:
    """For each show of the catalog, its season over every episode of the show in the data dir (not
    only this catalog's): the tidy table and ``GET /shows/{show}/screentime``'s summary."""
    from .exports import json_rows, write_tables
    from .ids import parse_ep_id
    from .shows.season import season_export, season_table

    for show in sorted({parse_ep_id(ep_id).show for ep_id in ep_ids}):
        rows, _ = season_export(storage, show)
        write_tables(storage, f"{base}/season_{show}", rows)
        storage.write_text(f"{base}/season_{show}.json", json.dumps({**season_table(storage, show), "export": json_rows(rows)}, indent=1))


def season_pass(data_uri: str, ep_ids: list[str], profile: str | None, overrides: dict) -> list[str]:
    """Screen time again where it is stale: an episode that finished early linked its voices with fewer of
    its show's other episodes than there are now (:mod:`pipelines.audio.season_voices`). Only the screentime
    stage runs, and only where its fingerprint changed, so a catalog's result does not depend on the
    order its episodes finished in. Returns the episodes recomputed."""
    from .runner import run_pipeline
    from .schemas import StageName
    from .storage import open_storage

    storage = open_storage(data_uri)
    out = []
    for ep_id in sorted(ep_ids):
        try:
            result = run_pipeline(storage=storage, ep_id=ep_id, profile=profile, overrides=overrides, stages=[StageName.screentime])
        except Exception as exc:  # noqa: BLE001 - the episode's own result stands; the summary is still written
            print(f"season: {ep_id}'s screen time was not recomputed: {type(exc).__name__}: {exc}", flush=True)
            continue
        if any(o.action == "computed" for o in result.outcomes):
            out.append(ep_id)
    return out


def run_catalog(entries: list[CatalogEntry], data_uri: str, workers: int, profile: str | None, overrides: dict, name: str) -> tuple[list[dict], str]:
    good: list[CatalogEntry] = []
    results: list[dict] = []
    for e in entries:
        try:
            validate_ep_id(e.ep_id)
            good.append(e)
        except InvalidIdError as exc:
            results.append(EpisodeResult(e.ep_id, "failed", str(exc)).__dict__)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    per_episode = dict(overrides)
    per_episode.setdefault("detect_track.num_detectors", max(1, cpus // workers))
    pending = list(good)
    in_flight: dict[ray.ObjectRef, str] = {}
    total = len(entries)
    t0 = time.time()
    while pending or in_flight:
        while pending and len(in_flight) < workers:
            e = pending.pop(0)
            ref = run_episode.options(name=f"episode:{e.ep_id}").remote(e.__dict__, data_uri, profile, per_episode)
            in_flight[ref] = e.ep_id
        ready, _ = ray.wait(list(in_flight), num_returns=1)
        in_flight.pop(ready[0])
        r = ray.get(ready[0])
        results.append(r)
        actions = ",".join(sorted(set(r["actions"].values()))) or "-"
        print(
            f"[{len(results)}/{total}] {r['ep_id']}: {r['status']} ({actions}) in {r['wall_s']:.1f}s" + (f" - {r['error']}" if r["error"] else ""), flush=True
        )
    refreshed = season_pass(data_uri, [r["ep_id"] for r in results if r["status"] == "succeeded"], profile, per_episode)
    if refreshed:
        print(f"season: speaking time recomputed for {len(refreshed)} episode(s) with the voices of the episodes that finished after them", flush=True)
    where = write_summary(data_uri, name, results)
    print(f"catalog: {sum(r['status'] == 'succeeded' for r in results)}/{total} succeeded in {time.time() - t0:.1f}s; summary in {where}")
    return results, where


def data_dir_problem(data_dir: str, alive_nodes: int) -> str | None:
    """Episode tasks run on any node and write their artifacts there: on a cluster of several nodes only
    an ``s3://`` data dir is one place for all of them."""
    if alive_nodes > 1 and not data_dir.startswith("s3://"):
        return f"this Ray cluster has {alive_nodes} nodes: give an s3:// --data-dir, which every node sees ({data_dir} is local to each)"
    return None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The catalog command's flags (``python -m pipelines.batch`` and ``screenalytics batch``)."""
    parser.add_argument("--catalog", required=True, help="CSV/JSONL file (columns ep_id, video), or s3://bucket/prefix of videos")
    parser.add_argument("--data-dir", default="data", help="local directory or s3://bucket/prefix for artifacts")
    parser.add_argument("--workers", type=int, default=None, help="episodes at once (default: one per 2 CPUs, or per GPU)")
    parser.add_argument("--profile", default=None, help="balanced (default), low_power or high_accuracy")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override a setting, e.g. detect_track.detect_fps=8")
    parser.add_argument("--name", default=None, help="summary folder name (default: the catalog's name)")
    parser.add_argument("--num-cpus", type=int, default=None, help="CPUs of a local Ray started by this command")
    parser.add_argument(
        "--address",
        default=None,
        help="Ray cluster to join; local: a private one (default: RAY_ADDRESS, e.g. under `ray job submit`, else the cluster `ray start` runs on this machine, else a private local Ray)",
    )
    parser.add_argument("--no-dashboard", action="store_true", help="start a private Ray without its dashboard")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.batch", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run_command(parser.parse_args(argv))


def run_command(args: argparse.Namespace) -> int:
    """Run the catalog ``args`` name: exit 0 when every episode succeeded, 1 when some failed, 2 bad input."""
    from .config import ConfigError, parse_overrides, resolve_config
    from .ray_env import RayUnreachable, ensure_ray

    try:
        overrides = parse_overrides(args.overrides)
        resolve_config(args.profile, overrides)
        entries = load_catalog(args.catalog)
    except (CatalogError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not entries:
        print(f"error: no episodes in {args.catalog}", file=sys.stderr)
        return 2
    try:
        ensure_ray(args.address, num_cpus=args.num_cpus, dashboard=not getattr(args, "no_dashboard", False), announce=True)
    except RayUnreachable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    problem = data_dir_problem(args.data_dir, sum(1 for n in ray.nodes() if n.get("Alive")))
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    resources = ray.cluster_resources()
    workers = args.workers or max(1, int(resources.get("GPU", 0)) * 2 or int(resources.get("CPU", 1)) // 2)
    data_uri = args.data_dir if args.data_dir.startswith("s3://") else str(Path(args.data_dir).resolve())
    name = args.name or re.sub(r"[^A-Za-z0-9._-]", "_", Path(args.catalog.rstrip("/")).stem or "catalog")
    results, _ = run_catalog(entries, data_uri, workers, args.profile, overrides, name)
    return 0 if all(r["status"] == "succeeded" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
