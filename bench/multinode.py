"""A multi-node Ray cluster on this one machine, with a real S3 API, for the node-loss test and the
season soak: a head and worker nodes (each its own raylet, object store and CPUs: Ray's
``cluster_utils``), moto's S3 server, a catalog of short real-face episodes in the bucket, and a show
facebank in each data dir. Catalogs are submitted as Ray jobs (the job SDK), as ``ray job submit`` does.

Nothing here is a stand-in: the raylets, the jobs, the S3 API and the models are the real ones; only
the nodes share one machine's two cores, so times are for scheduling and recovery, not throughput.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SHOW = "season"
BUCKET = "screenalytics"
CAST = ("obama", "biden")
FINAL = ("SUCCEEDED", "FAILED", "STOPPED")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LocalCluster:
    cluster: Any  # ray.cluster_utils.Cluster
    workers: list[Any]
    dashboard: str
    s3_endpoint: str
    jobs: Any = None  # JobSubmissionClient
    removed: list[str] = field(default_factory=list)

    def submit(self, *args: str, timeout_s: float = 180) -> str:
        """A job running ``python -m`` ``args`` on the cluster; returns its id. Retried while the head's
        job agent is still starting ("No available agent to submit job": seen under CPU load)."""
        deadline = time.time() + timeout_s
        while True:
            try:
                return str(self.jobs.submit_job(entrypoint=" ".join([sys.executable, "-m", *args])))
            except RuntimeError as exc:
                if time.time() > deadline or "status code 5" not in str(exc):
                    raise
                time.sleep(2)

    def wait(self, job_id: str, timeout_s: float = 1200) -> str:
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            status = str(self.jobs.get_job_status(job_id))
            if status in FINAL:
                return status
            time.sleep(1)
        raise TimeoutError(f"job {job_id} still running after {timeout_s:.0f} s")

    def logs(self, job_id: str) -> str:
        return str(self.jobs.get_job_logs(job_id))

    def remove_worker(self, index: int = -1) -> str:
        """Kill a worker node's raylet and everything on it, as a lost machine would (no graceful drain)."""
        node = self.workers.pop(index)
        self.cluster.remove_node(node, allow_graceful=False)
        self.removed.append(node.node_id)
        return str(node.node_id)


@contextmanager
def local_cluster(workers: int = 2, cpus_per_node: int = 1) -> Iterator[LocalCluster]:
    """A head (with the dashboard and the job server) and ``workers`` worker nodes, and moto's S3 server
    with an empty bucket; S3's endpoint and test credentials are in every node's environment (set before
    the nodes start, as ``ray start`` on a real machine would see them)."""
    from ray.cluster_utils import Cluster
    from ray.job_submission import JobSubmissionClient

    from pipelines.storage import s3_client

    port = _free_port()
    moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in ("S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "RAY_ADDRESS")}
    os.environ.update(S3_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1")
    os.environ.pop("RAY_ADDRESS", None)
    cluster = None
    try:
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        s3_client(endpoint).create_bucket(Bucket=BUCKET)
        # Each node's dashboard agent on a port of its own: the default (52365) is taken by any other Ray
        # on this machine (a test session's), and a head without its agent takes no job ("No available
        # agent to submit job").
        head_args = {"num_cpus": cpus_per_node, "include_dashboard": True, "dashboard_port": 0, "dashboard_agent_listen_port": _free_port()}
        cluster = Cluster(initialize_head=True, connect=False, head_node_args=head_args)
        nodes = [cluster.add_node(num_cpus=cpus_per_node, dashboard_agent_listen_port=_free_port()) for _ in range(workers)]
        cluster.wait_for_nodes()
        url = cluster.head_node.webui_url
        dashboard = url if url.startswith("http") else f"http://{url}"
        yield LocalCluster(cluster, nodes, dashboard, endpoint, JobSubmissionClient(dashboard))
    finally:
        if cluster is not None:
            cluster.shutdown()
        moto.terminate()
        moto.wait(timeout=10)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def upload_catalog(endpoint: str, episodes: int, seconds: float, work_dir: Path) -> list[str]:
    """``episodes`` short real-face episodes (640x360) into ``s3://{BUCKET}/raw/videos/{SHOW}/s01/eNN/``;
    returns their ep ids. Rendered once into ``work_dir`` and reused."""
    from pipelines.sample.episode import random_episode, render_episode
    from pipelines.sample.media import load_sprites
    from pipelines.storage import s3_client

    sprites = load_sprites()
    s3 = s3_client(endpoint)
    ep_ids = []
    for k in range(1, episodes + 1):
        video = work_dir / f"season_{k:02d}_{int(seconds)}s.mp4"
        if not video.is_file():
            spec = random_episode(1000 + k, seconds, sorted(sprites), 640, 360, sprite_counts={p: len(v) for p, v in sprites.items()})
            render_episode(spec, sprites, video)
        s3.upload_file(str(video), BUCKET, f"raw/videos/{SHOW}/s01/e{k:02d}/episode.mp4")
        ep_ids.append(f"{SHOW}-s01e{k:02d}")
    return ep_ids


def add_facebank(data_uri: str, work_dir: Path) -> None:
    """One reference photo per cast member into the show's facebank under ``data_uri``."""
    from pipelines.config import resolve_config
    from pipelines.sample.media import reference_photos
    from pipelines.shows.bank import PhotoInput, add_photos
    from pipelines.storage import open_storage

    photos = reference_photos(work_dir / "photos")
    storage = open_storage(data_uri)
    models = resolve_config(None, None).config.models
    for person in CAST:
        add_photos(storage, SHOW, person, [PhotoInput(photos[person].name, photos[person].read_bytes())], models, name=person.title())


def catalog_args(data_uri: str, name: str, workers: int) -> list[str]:
    return ["pipelines.batch", "--catalog", f"s3://{BUCKET}/raw/videos/{SHOW}/", "--data-dir", data_uri, "--name", name, "--workers", str(workers)]
