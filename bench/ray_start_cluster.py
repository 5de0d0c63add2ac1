"""A throwaway ``ray start --head`` cluster on this machine, as a user would leave one running, for the
benchmarks and tests that measure or check what a command does beside it.

Its files live in a temp dir of its own (``RAY_TMPDIR``), so it never takes the place of a cluster the
user runs, and it is stopped by killing its own processes: ``ray stop`` would stop every Ray on the
machine, a test session's included.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class StartedCluster:
    address: str
    """The GCS address ``ray start`` recorded (what a command finds with no address given)."""
    env: dict[str, str]
    """The environment a command needs to see this cluster (``RAY_TMPDIR``; no ``RAY_ADDRESS``)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def ray_start_cluster(num_cpus: int = 2) -> Iterator[StartedCluster]:
    temp_dir = tempfile.mkdtemp(prefix="rs", dir="/tmp")  # short: Ray's socket paths live under it
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_MODE")}
    env.update(RAY_TMPDIR=temp_dir, RAY_USAGE_STATS_ENABLED="0")
    ray_cli = os.path.join(os.path.dirname(sys.executable), "ray")
    command = [ray_cli, "start", "--head", f"--num-cpus={num_cpus}", "--include-dashboard=false", "--disable-usage-stats"]
    command += [f"--port={_free_port()}", f"--ray-client-server-port={_free_port()}"]
    address = ""
    try:
        subprocess.run(command, check=True, capture_output=True, env=env, timeout=180)
        with open(os.path.join(temp_dir, "ray", "ray_current_cluster")) as fh:
            address = fh.read().strip()
        yield StartedCluster(address, env)
    finally:
        kill_cluster(temp_dir, address)
        shutil.rmtree(temp_dir, ignore_errors=True)


def kill_cluster(temp_dir: str, gcs_address: str) -> None:
    """Kill one cluster's processes: those naming its temp dir or GCS address on their command line
    (the Ray Client server names only the address), and all their children (workers, agents)."""
    import psutil

    marks = [re.compile(re.escape(m) + r"(?![\w.-])") for m in (temp_dir, gcs_address) if m]  # not a longer port or path
    spared = {os.getpid(), *(p.pid for p in psutil.Process().parents())}  # a caller may name the cluster on its own command line
    roots = [p for p in psutil.process_iter(["cmdline"]) if p.pid not in spared and any(m.search(arg) for arg in (p.info["cmdline"] or []) for m in marks)]
    doomed = set(roots)
    for proc in roots:
        try:
            doomed.update(proc.children(recursive=True))
        except psutil.NoSuchProcess:
            pass
    for proc in doomed:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(list(doomed), timeout=30)
