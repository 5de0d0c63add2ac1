"""``screenalytics serve`` as a user runs it: its own Ray, its own port, stopped by a signal mid-job."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time

import httpx
import pytest

from .conftest import _free_port, repo_root


def test_serve_refuses_a_public_address_without_a_token(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCREENALYTICS_API_TOKEN")}
    proc = subprocess.run(
        [sys.executable, "-m", "serve_app.cli", "serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=repo_root(),
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2 and "without an API token" in proc.stderr


def test_a_named_cluster_that_does_not_answer_is_an_error_in_seconds(tmp_path, test_episode):
    """Ray's own join retries a dead address every 40 s and never gives up; every command that takes
    --address or RAY_ADDRESS says what is wrong instead, with exit code 2 and no traceback."""
    dead = f"127.0.0.1:{_free_port()}"
    catalog = tmp_path / "catalog.csv"
    catalog.write_text("ep_id,video\nshow-s01e01,/nonexistent.mp4\n")
    commands = {
        "run": ["serve_app.cli", "run", str(test_episode[0]), "--ep-id", "dead-s01e01", "--data-dir", str(tmp_path), "--no-progress"],
        "serve": ["serve_app.cli", "serve", "--data-dir", str(tmp_path), "--address", dead],
        "catalog": ["pipelines.batch", "--catalog", str(catalog), "--data-dir", str(tmp_path), "--address", dead],
    }
    for name, argv in commands.items():
        started = time.monotonic()
        env = {**os.environ, "RAY_ADDRESS": dead} if name == "run" else os.environ  # the variable, as `ray job submit` sets it
        proc = subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True, cwd=repo_root(), env=env, timeout=120)
        took = time.monotonic() - started
        assert proc.returncode == 2, (name, proc.stderr[-2000:])
        assert f"no Ray cluster answers at {dead}" in proc.stderr and "Traceback" not in proc.stderr, (name, proc.stderr[-2000:])
        assert took < 60, (name, took)  # Ray alone would still be retrying


def test_reachability_check_reads_every_address_form():
    import socket

    from pipelines.ray_env import RayUnreachable, check_reachable

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        check_reachable(f"127.0.0.1:{port}")
        check_reachable(f"ray://127.0.0.1:{port}")
    check_reachable("local")  # starts a cluster: nothing to reach
    for address in (f"127.0.0.1:{port}", f"ray://localhost:{port}", "no-such-host.invalid:6379"):
        with pytest.raises(RayUnreachable, match="no Ray cluster answers"):
            check_reachable(address, timeout_s=2)


@pytest.mark.slow
def test_sigterm_mid_job_stops_the_server_and_settles_job_and_markers(test_episode, tmp_path):
    video, _ = test_episode
    data, port = tmp_path / "data", _free_port()
    log = open(tmp_path / "serve.log", "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "serve_app.cli",
            "serve",
            "--data-dir",
            str(data),
            "--port",
            str(port),
            "--address",
            "local",
        ],  # its own Ray, whatever runs beside
        cwd=repo_root(),
        env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
        deadline = time.time() + 180
        while time.time() < deadline:
            try:
                if client.get("/health").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        # Its own Ray, so its dashboard too, announced on one line and answering there.
        dashboard = re.search(r"Ray dashboard: (http://\S+)", (tmp_path / "serve.log").read_text())
        assert dashboard, (tmp_path / "serve.log").read_text()[-2000:]
        assert httpx.get(dashboard.group(1), timeout=30).status_code < 500
        client.post("/episodes", json={"show_slug_or_id": "sig", "season_number": 1, "episode_number": 1})
        assert client.post("/episodes/sig-s01e01/video", files={"file": ("e.mp4", video.read_bytes(), "video/mp4")}).status_code == 200
        job = client.post("/jobs/detect_track_async", json={"ep_id": "sig-s01e01"}).json()
        while client.get(f"/jobs/{job['job_id']}").json()["state"] != "running" and time.time() < deadline:
            time.sleep(0.2)
        marker = data / "manifests" / "sig-s01e01" / "runs" / "main" / "detect_track.json"
        while not marker.exists() and time.time() < deadline:
            time.sleep(0.1)
        t0 = time.time()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        stopped_s = time.time() - t0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
    print(f"\nscreenalytics serve stopped {stopped_s:.1f}s after SIGTERM")
    assert proc.returncode == 0, (tmp_path / "serve.log").read_text()[-2000:]
    assert stopped_s < 5
    with sqlite3.connect(data / "state.sqlite3") as db:
        state, error = db.execute("SELECT state, error FROM jobs WHERE job_id=?", (job["job_id"],)).fetchone()
    assert state == "failed" and "server stopped" in error
    assert json.loads(marker.read_text())["state"] == "failed"


@pytest.mark.slow
def test_cli_starts_its_own_ray_past_a_stale_session_and_stays_quiet(test_episode):
    """A killed `ray start` cluster leaves its address in Ray's temp dir; Ray's default would try to join
    it and fail. The CLI starts its own Ray, and prints no Ray warning on the way."""
    import shutil
    import tempfile

    video, truth = test_episode
    tmp = tempfile.mkdtemp(prefix="rs", dir="/tmp")  # short: Ray's socket paths live under it
    try:
        (os.path.join(tmp, "ray") and os.makedirs(os.path.join(tmp, "ray")))
        with open(os.path.join(tmp, "ray", "ray_current_cluster"), "w") as fh:
            fh.write("127.0.0.1:1\n")  # nothing listens there: a dead cluster
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        env.update(RAY_TMPDIR=tmp, RAY_USAGE_STATS_ENABLED="0")
        proc = subprocess.run(
            [sys.executable, "-m", "serve_app.cli", "run", str(video), "--ep-id", "stale-s01e01", "--data-dir", os.path.join(tmp, "data"), "--no-progress"],
            capture_output=True,
            text=True,
            cwd=repo_root(),
            env=env,
            timeout=600,
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "screentime" in proc.stderr and "identity" in proc.stdout  # stage lines are narration (stderr), the table the result
    noisy = [line for line in proc.stderr.splitlines() if "WARNING" in line or "Token authentication" in line]
    assert noisy == [], noisy


@pytest.mark.slow
def test_cli_uses_the_cluster_ray_start_left_running(test_episode):
    """With no address, a `ray start` cluster on this machine that answers is used (Ray's start-up and
    shut-down skipped, its model actors reused), token authentication included, and said in one line."""
    from bench.ray_start_cluster import ray_start_cluster

    video, _ = test_episode
    with ray_start_cluster() as cluster:
        data_dir = os.path.join(cluster.env["RAY_TMPDIR"], "data")
        proc = subprocess.run(
            [sys.executable, "-m", "serve_app.cli", "run", str(video), "--ep-id", "joined-s01e01", "--data-dir", data_dir, "--no-progress"],
            capture_output=True,
            text=True,
            cwd=repo_root(),
            env=cluster.env,
            timeout=600,
        )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "screentime" in proc.stderr and "identity" in proc.stdout  # stage lines are narration (stderr), the table the result
    assert f"using the Ray cluster that `ray start` runs at {cluster.address}" in proc.stderr
    noisy = [line for line in proc.stderr.splitlines() if "WARNING" in line or "InvalidAuthToken" in line or " W " in line]
    assert noisy == [], noisy


@pytest.mark.slow
def test_serve_beside_a_running_cluster_leaves_it_as_it_found_it(tmp_path):
    """On a shared cluster, stopping the API removes only its app (the cluster and Serve keep running),
    and a second API asked for another port is refused: Serve keeps the address it started with, so
    the API would answer somewhere else than the command says."""
    from bench.ray_start_cluster import ray_start_cluster

    first, second = _free_port(), _free_port()
    with ray_start_cluster() as cluster:
        command = [sys.executable, "-m", "serve_app.cli", "serve", "--data-dir", str(tmp_path)]
        proc = subprocess.Popen([*command, "--port", str(first)], cwd=repo_root(), env=cluster.env, stderr=subprocess.PIPE, text=True)
        try:
            deadline, answered = time.time() + 180, False
            while time.time() < deadline and not answered:
                try:
                    answered = httpx.get(f"http://127.0.0.1:{first}/health", timeout=5).status_code == 200
                except httpx.HTTPError:
                    time.sleep(0.5)
            assert answered
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0 and "using the Ray cluster that `ray start` runs at" in err, err[-2000:]
        assert httpx.get(f"http://127.0.0.1:{first}/health", timeout=5).status_code == 404  # Serve stays, the app is gone
        refused = subprocess.run([*command, "--port", str(second)], cwd=repo_root(), env=cluster.env, capture_output=True, text=True, timeout=180)
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert f"Ray Serve already runs on this cluster at http://127.0.0.1:{first}" in refused.stderr
