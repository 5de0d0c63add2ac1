"""Shared fixtures: one local Ray (2 CPUs) per session, real-face media, one real pipeline run."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
# Credentials for the local S3 API (moto accepts any). Set before Ray starts, so every worker inherits
# them from its node, as on a real cluster: secrets never travel in a runtime env.
for _key, _value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"), ("AWS_DEFAULT_REGION", "us-east-1")):
    os.environ.setdefault(_key, _value)

TEST_EP = "test-s01e01"


@pytest.fixture(scope="session")
def ray_cluster():
    import ray

    from pipelines.ray_env import quiet_ray_data

    # local: a cluster of the session's own, even when `ray start` runs one on this machine
    ray.init(address="local", num_cpus=2, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False)
    quiet_ray_data()
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def sprites():
    from pipelines.sample.media import load_sprites

    return load_sprites()


@pytest.fixture(scope="session")
def test_episode(tmp_path_factory, sprites):
    """(video path, ground truth) of the 14 s, 3-person real-face test episode."""
    from pipelines.sample.episode import render_episode, test_episode_spec

    video = tmp_path_factory.mktemp("media") / "test_episode.mp4"
    truth = render_episode(test_episode_spec(), sprites, video)
    return video, truth


@pytest.fixture(scope="session")
def pipeline_run(ray_cluster, test_episode, tmp_path_factory):
    """One full pipeline run on the test episode: (storage, layout, result, truth, video)."""
    from pipelines.layout import RunLayout
    from pipelines.runner import run_pipeline
    from pipelines.storage import LocalStorage

    video, truth = test_episode
    storage = LocalStorage(tmp_path_factory.mktemp("data"))
    result = run_pipeline(storage=storage, ep_id=TEST_EP, video=str(video))
    return storage, RunLayout(TEST_EP, result.run_id), result, truth, video


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server():
    """A real S3 API on loopback (moto in server mode); yields its endpoint URL."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            time.sleep(0.2)
    env = {"S3_ENDPOINT_URL": url}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield url
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    proc.terminate()
    proc.wait(timeout=10)


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
