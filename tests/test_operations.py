"""What an operator watching the cluster sees: the pipeline's numbers at Ray's Prometheus export, from
the runs, the API's jobs and the reviewers' corrections alike (``pipelines.metrics``)."""

from __future__ import annotations

import re
import time
import urllib.request
from collections.abc import Callable

import pytest

pytestmark = pytest.mark.slow


Samples = dict[str, list[tuple[dict[str, str], float]]]


def exported(names: list[str], until: Callable[[Samples], bool] = lambda s: True, timeout_s: float = 60) -> Samples:
    """Samples of each metric ``names`` at this node's Prometheus endpoint, waiting for all of them and
    for ``until`` (Ray exports every ~10 s, each process its own series): {name: [(labels, value)]}."""
    import ray

    port = ray._private.worker.global_worker.node.metrics_export_port
    deadline = time.time() + timeout_s
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    while time.time() < deadline:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        found = {name: [] for name in names}
        for line in text.splitlines():
            m = re.match(r"^(ray_[a-z_]+)\{(.*)\} ([0-9.eE+-]+)$", line)
            if m and m.group(1) in found:
                labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
                found[m.group(1)].append((labels, float(m.group(3))))
        if all(found.values()) and until(found):
            return found
        time.sleep(2)
    missing = [n for n, v in found.items() if not v]
    raise AssertionError(f"not exported within {timeout_s:.0f} s: {missing or found}")


def test_a_run_reports_stage_seconds_frames_and_faces(pipeline_run):
    _, _, result, *_ = pipeline_run
    samples = exported(["ray_screenalytics_stage_seconds_count", "ray_screenalytics_frames_detected_total", "ray_screenalytics_faces_embedded_total"])
    stages = {labels["stage"] for labels, value in samples["ray_screenalytics_stage_seconds_count"] if value > 0}
    assert {"detect_track", "faces_embed", "cluster", "screentime"} <= stages
    detected = next(o.counts["frames_sampled"] for o in result.outcomes if o.stage.value == "detect_track")
    assert sum(v for _, v in samples["ray_screenalytics_frames_detected_total"]) >= detected > 0
    assert sum(v for _, v in samples["ray_screenalytics_faces_embedded_total"]) > 0
