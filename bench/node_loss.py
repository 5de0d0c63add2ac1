"""A season on a multi-node cluster that loses a node (:mod:`bench.multinode`: a head and two workers,
moto's S3 API as the data dir, a show facebank, 12 short real-face episodes submitted as Ray jobs).

    python -m bench.node_loss [--episodes 12] [--out result.json]

1. The catalog runs clean, into one data dir.
2. It runs again into another, with the show's facebank actor started on a worker node, and mid-run that
   node is removed, raylet and all, as a lost machine would be.
3. It is submitted once more: nothing may be recomputed.
4. The API runs on the cluster (``screenalytics serve``, a Ray job) while a reviewer posts a burst of
   corrections, and the last worker node is removed mid-burst: every acknowledged correction must be
   in the log.

Prints (and writes) the facts ``tests/test_node_loss.py`` checks: every episode's status, artifacts
that do not parse by their schema, screen time that differs from the clean run, where the facebank
actor was and is, what the resubmission recomputed, corrections acknowledged and kept, wall times.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from pipelines.registry import IDENTITIES, SCREENTIME

from .multinode import BUCKET, SHOW, LocalCluster, _free_port, add_facebank, catalog_args, local_cluster, upload_catalog

PROBE = "bench.node_loss_probe"
PROBE_FAILURES: list[str] = []


def episodes_table(storage: Any, name: str) -> list[dict]:
    import io

    import pyarrow.parquet as pq

    return pq.read_table(io.BytesIO(storage.read_bytes(f"catalogs/{name}/episodes.parquet"))).to_pylist()


def unreadable_artifacts(storage: Any, ep_ids: list[str]) -> list[str]:
    """Keys under the episodes' runs that do not parse (by their schema where they have one), and any
    temporary file left behind."""
    import csv
    import io

    import numpy as np
    import pyarrow.parquet as pq

    from pipelines.artifacts import read_jsonl, read_model
    from pipelines.schemas import DetectionRow, FaceRow, IdentitiesFile, ScreentimeReport, StageMarker, StageName, TrackRow, VideoMeta

    schemas: dict[str, Any] = {"video.json": VideoMeta, "identities.json": IdentitiesFile, "analytics/screentime.json": ScreentimeReport}
    schemas.update({f"{s.value}.json": StageMarker for s in StageName})
    rows = {"tracks.jsonl": TrackRow, "detections.jsonl": DetectionRow, "faces.jsonl": FaceRow}
    bad = []
    for ep_id in ep_ids:
        for area in ("manifests", "embeds", "frames"):
            prefix = f"{area}/{ep_id}/runs/main"
            for key in storage.list(prefix):
                name = key[len(prefix) + 1 :] if key.startswith(prefix + "/") else key
                full = key if key.startswith(area) else f"{prefix}/{key}"
                try:
                    if ".tmp" in name:
                        raise ValueError("temporary file left behind")
                    if name in schemas:
                        read_model(storage, full, schemas[name])
                    elif name in rows:
                        read_jsonl(storage, full, rows[name])
                    elif name.endswith(".json"):
                        json.loads(storage.read_text(full))
                    elif name.endswith(".jsonl"):
                        [json.loads(line) for line in storage.read_text(full).splitlines() if line.strip()]
                    elif name.endswith(".parquet"):
                        pq.read_table(io.BytesIO(storage.read_bytes(full)))
                    elif name.endswith(".npy"):
                        np.load(io.BytesIO(storage.read_bytes(full)))
                    elif name.endswith(".csv"):
                        list(csv.reader(io.StringIO(storage.read_text(full))))
                except Exception as exc:  # noqa: BLE001 - collected, reported
                    bad.append(f"{full}: {type(exc).__name__}: {exc}"[:300])
    return bad


def screentime_differences(clean: Any, faulted: Any, ep_ids: list[str]) -> list[str]:
    from pipelines.artifacts import read_model
    from pipelines.layout import RunLayout
    from pipelines.schemas import ScreentimeReport

    out = []
    for ep_id in ep_ids:
        key = SCREENTIME.key(RunLayout(ep_id, "main"))
        try:
            a, b = read_model(clean, key, ScreentimeReport), read_model(faulted, key, ScreentimeReport)
        except FileNotFoundError as exc:
            out.append(f"{ep_id}: {exc}")
            continue
        seen_a = sorted((m.cast_id, m.visual_s) for m in a.metrics) + sorted((i.identity_id, i.visual_s) for i in a.identities)
        seen_b = sorted((m.cast_id, m.visual_s) for m in b.metrics) + sorted((i.identity_id, i.visual_s) for i in b.identities)
        if seen_a != seen_b:
            out.append(f"{ep_id}: {seen_a} != {seen_b}")
    return out


def facebank_node(lc: LocalCluster, place_on: str | None = None) -> str | None:
    """The node of the show's facebank actor, alive (None: no live one), through a probe job; first
    (re)started on node ``place_on`` when given."""
    job = lc.submit(PROBE, SHOW, *(["place", place_on] if place_on else []))
    status = lc.wait(job, 180)
    line = next((x for x in lc.logs(job).splitlines() if x.startswith("FACEBANK ")), None)
    if status != "SUCCEEDED" or line is None:
        PROBE_FAILURES.append(f"{status}: {lc.logs(job)[-800:]}")
        return None
    found = json.loads(line[len("FACEBANK ") :].split("  #")[0])
    return found["node_id"] if found and found["state"] == "ALIVE" else None


def corrections_burst(lc: LocalCluster, data_uri: str, ep_id: str, n: int = 60) -> dict[str, Any]:
    """The API on the cluster; ``n`` corrections posted one after another while the last worker node is
    removed half-way; every 200 must be in the log."""
    from pipelines.corrections import load_corrections
    from pipelines.layout import RunLayout
    from pipelines.storage import open_storage

    port = _free_port()
    job = lc.submit("serve_app.cli", "serve", "--data-dir", data_uri, "--port", str(port), "--no-dashboard")
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    with httpx.Client(base_url=base, timeout=60) as client:
        while time.time() < deadline:
            try:
                if client.get("/health").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        identities = client.get(f"/episodes/{ep_id}/faces_review_bundle").json()["identities"]
        acked, statuses, removed = 0, [], threading.Event()
        for k in range(n):
            if k == n // 2:
                threading.Thread(target=lambda: (lc.remove_worker(), removed.set()), daemon=True).start()
            ident = identities[k % len(identities)]["identity_id"]
            try:
                r = client.post(f"/episodes/{ep_id}/identities/{ident}/mark", json={"run_id": "main", "kind": ("guest", "not_face", None)[k % 3]})
                statuses.append(r.status_code)
                acked += r.status_code == 200
            except httpx.HTTPError as exc:
                statuses.append(type(exc).__name__)
        removed.wait(60)
    lc.jobs.stop_job(job)
    logged = len(load_corrections(open_storage(data_uri), RunLayout(ep_id, "main")).corrections)
    return {"posted": n, "acknowledged": acked, "logged": logged, "statuses": sorted({str(s) for s in statuses})}


def run(episodes: int, work: Path) -> dict[str, Any]:
    from pipelines.layout import RunLayout
    from pipelines.storage import open_storage

    result: dict[str, Any] = {"episodes": episodes}
    with local_cluster() as lc:
        ep_ids = upload_catalog(lc.s3_endpoint, episodes, 4.0, work)
        clean_uri, faulted_uri = f"s3://{BUCKET}/clean", f"s3://{BUCKET}/faulted"
        for uri in (clean_uri, faulted_uri):
            add_facebank(uri, work)
        clean, faulted = open_storage(clean_uri), open_storage(faulted_uri)

        started = time.time()
        result["clean_job"] = lc.wait(lc.submit(*catalog_args(clean_uri, "clean", 3)))
        result["clean_wall_s"] = round(time.time() - started, 1)

        workers = {str(n.node_id) for n in lc.workers}
        result["facebank_placed_on"] = str(lc.workers[0].node_id)
        before = facebank_node(lc, place_on=result["facebank_placed_on"])  # on the node that will be lost
        result["facebank_node_before"] = before
        started = time.time()
        job = lc.submit(*catalog_args(faulted_uri, "faulted", 3))
        while sum(faulted.exists(f"manifests/{e}/runs/main/screentime.json") for e in ep_ids) < max(2, episodes // 4):
            time.sleep(0.5)
        index = next((k for k, n in enumerate(lc.workers) if str(n.node_id) == before), -1)
        result["episodes_done_at_removal"] = sum(faulted.exists(f"manifests/{e}/runs/main/screentime.json") for e in ep_ids)
        result["removed_node"] = lc.remove_worker(index)
        result["facebank_was_on_removed_node"] = before == result["removed_node"]
        result["faulted_job"] = lc.wait(job)
        result["faulted_wall_s"] = round(time.time() - started, 1)
        result["faulted_log_tail"] = lc.logs(job)[-1500:]
        after = facebank_node(lc)
        result["facebank_alive_after"] = after is not None
        result["facebank_node_after_is_alive_node"] = after is not None and after != result["removed_node"]

        table = episodes_table(faulted, "faulted")
        result["statuses"] = {r["ep_id"]: r["status"] for r in table}
        result["errors"] = {r["ep_id"]: r["error"] for r in table if r["error"]}
        result["episodes_per_node"] = {n[:8]: sum(r["node_id"] == n for r in table) for n in sorted({r["node_id"] for r in table if r["node_id"]})}
        result["workers_at_start"] = sorted(w[:8] for w in workers)
        result["unreadable_artifacts"] = unreadable_artifacts(faulted, ep_ids)
        result["screentime_differences"] = screentime_differences(clean, faulted, ep_ids)

        result["resubmit_job"] = lc.wait(lc.submit(*catalog_args(faulted_uri, "faulted", 3)))
        again = episodes_table(faulted, "faulted")
        result["recomputed_on_resubmit"] = sorted(
            {f"{r['ep_id']}:{k[:-7]}" for r in again for k, v in r.items() if k.endswith("_action") and v not in (None, "reused")}
        )
        busiest = max(ep_ids, key=lambda e: len(IDENTITIES.read(faulted, RunLayout(e, "main")).identities))
        try:
            result["corrections"] = corrections_burst(lc, faulted_uri, busiest)
        except Exception as exc:  # noqa: BLE001 - reported with everything else
            result["corrections"] = {"error": f"{type(exc).__name__}: {exc}"}
    result["wall_ratio"] = round(result["faulted_wall_s"] / result["clean_wall_s"], 2)
    result["probe_failures"] = PROBE_FAILURES
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--episodes", type=int, default=12)
    parser.add_argument("--work", default="data/bench/node_loss")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    result = run(args.episodes, work)
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    sys.exit(0)


if __name__ == "__main__":
    main()
