"""A season on a multi-node Ray cluster that loses a node (``bench.node_loss``, in a process of its own:
a head and two worker raylets on this machine, moto's S3 API as the data dir, a show facebank, 12 short
real-face episodes submitted as Ray jobs). Mid-catalog, the worker node the facebank actor was started on
is removed, raylet and all; later, the last worker is removed while a reviewer's
corrections burst goes to the API running on the cluster."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import repo_root

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def node_loss(tmp_path_factory):
    out = tmp_path_factory.mktemp("node-loss") / "result.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.node_loss", "--episodes", "12", "--out", str(out)], cwd=repo_root(), capture_output=True, text=True, timeout=1800
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    print(json.dumps({k: v for k, v in result.items() if k != "faulted_log_tail"}, indent=1))
    return result


def test_every_episode_finishes_whole_and_equal_to_a_run_without_the_fault(node_loss):
    r = node_loss
    assert r["clean_job"] == r["faulted_job"] == "SUCCEEDED", r["faulted_log_tail"]
    assert 0 < r["episodes_done_at_removal"] < r["episodes"]  # the node went away mid-catalog
    assert list(r["statuses"].values()) == ["succeeded"] * r["episodes"], r["statuses"]
    assert r["unreadable_artifacts"] == []
    assert r["screentime_differences"] == []
    # Target 1.5 (measured 0.89-1.26 over six runs, bench/node_loss.py); bounded loosely here, where the
    # three nodes share two cores with whatever else runs: time is reported, correctness is the test.
    assert r["wall_ratio"] <= 3.0


def test_the_facebank_actor_survives_and_a_resubmission_recomputes_nothing(node_loss):
    r = node_loss
    # It is started on the worker that will be lost (a soft node affinity: on a loaded machine Ray may
    # put it elsewhere, and then the check below covers a survivor's actor only).
    print({k: r.get(k) for k in ("facebank_placed_on", "facebank_node_before", "removed_node", "facebank_was_on_removed_node", "probe_failures")})
    assert r["facebank_alive_after"] and r["facebank_node_after_is_alive_node"]
    assert r["resubmit_job"] == "SUCCEEDED" and r["recomputed_on_resubmit"] == []


def test_no_acknowledged_correction_is_lost_when_a_node_dies(node_loss):
    c = node_loss["corrections"]
    assert c["acknowledged"] == c["posted"] and c["logged"] == c["acknowledged"], c
