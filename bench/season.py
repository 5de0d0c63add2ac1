"""Season soak: a 30-episode catalog on the local multi-node cluster (:mod:`bench.multinode`: a head and
two workers, moto's S3 API as the data dir, a show facebank), submitted as a Ray job.

    python -m bench.season [--episodes 30] [--seconds 4] [--out bench/results/season_multinode_2core.json]

Reports the wall time, episodes per minute, each node's peak memory (its raylet and every process under
it: workers, agents, object store pages they touch; RSS sampled every 2 s) and how scheduling spread
the episodes over the nodes. The nodes share this machine's two cores, so it measures scheduling and
memory, not what three machines would do.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import threading
import time
from pathlib import Path

import psutil

from .multinode import BUCKET, add_facebank, catalog_args, local_cluster, upload_catalog


def node_memory_mb() -> dict[str, float]:
    """RSS of each raylet and everything under it, by node id (first 8 characters)."""
    out: dict[str, float] = {}
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        m = re.search(r"--node_id=([0-9a-f]+)", cmd)
        if proc.info["name"] != "raylet" or not m:
            continue
        try:
            total = proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
        except psutil.Error:
            continue
        out[m.group(1)[:8]] = round(total / 2**20, 1)
    return out


def main() -> None:
    import pyarrow.parquet as pq

    from pipelines.storage import open_storage

    parser = argparse.ArgumentParser()
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--work", default="data/bench/season")
    parser.add_argument("--out", default="bench/results/season_multinode_2core.json")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    peaks: dict[str, float] = {}
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(2):
            for node, mb in node_memory_mb().items():
                peaks[node] = max(peaks.get(node, 0.0), mb)

    with local_cluster() as lc:
        ep_ids = upload_catalog(lc.s3_endpoint, args.episodes, args.seconds, work)
        data_uri = f"s3://{BUCKET}/season"
        add_facebank(data_uri, work)
        head = str(lc.cluster.head_node.node_id)[:8]
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.time()
        job = lc.submit(*catalog_args(data_uri, "season", 3))
        status = lc.wait(job, 3600)
        wall = time.time() - started
        stop.set()
        table = pq.read_table(io.BytesIO(open_storage(data_uri).read_bytes("catalogs/season/episodes.parquet"))).to_pylist()
    per_node: dict[str, int] = {}
    for row in table:
        key = (row["node_id"] or "?")[:8]
        per_node[key] = per_node.get(key, 0) + 1
    result = {
        "episodes": len(ep_ids),
        "episode_seconds": args.seconds,
        "job": status,
        "succeeded": sum(r["status"] == "succeeded" for r in table),
        "wall_s": round(wall, 1),
        "episodes_per_minute": round(len(ep_ids) / wall * 60, 2),
        "head_node": head,
        "episodes_per_node": per_node,
        "peak_memory_mb_per_node": peaks,
        "mean_episode_wall_s": round(sum(r["wall_s"] for r in table) / max(1, len(table)), 2),
    }
    print(json.dumps(result, indent=1))
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
