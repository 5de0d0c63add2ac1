"""Actor pool sizing on CPU and GPU clusters, and the fatbin pruning the GPU check ships with."""

import struct

import pytest

from actors.pools import actor_pool, embedder_pool
from bench.fatbin_prune import CONTAINER, ENTRY, FATBIN_MAGIC, prune


def test_cpu_cluster_pools_take_one_actor_per_cpu_and_no_gpu():
    detectors = actor_pool(resources={"CPU": 2.0})
    assert (detectors.size, detectors.num_gpus) == (2, 0.0)
    assert embedder_pool(resources={"CPU": 2.0}).num_gpus == 0.0


@pytest.mark.parametrize("cpus,gpus,workers", [(16, 1, 1), (16, 1, 2), (8, 1, 3), (64, 8, 4), (4, 1, 1)])
def test_gpu_pools_keep_every_cpu_decoding_and_fit_the_gpus(cpus, gpus, workers):
    """Detectors stay one per CPU (decoding is their bottleneck); every concurrent episode's detectors
    plus the embedders must fit the cluster's GPUs, or Ray would leave actors pending."""
    resources = {"CPU": float(cpus), "GPU": float(gpus)}
    per_episode = actor_pool(max(1, cpus // workers), use_gpu=True, resources=resources)
    embedders = embedder_pool(use_gpu=True, resources=resources)
    assert per_episode.size == max(1, cpus // workers) and 0 < per_episode.num_gpus <= 1
    assert embedders.size == 2 * gpus and 0 < embedders.num_gpus <= 1
    assert workers * per_episode.size * per_episode.num_gpus + embedders.size * embedders.num_gpus <= gpus + 1e-9
    assert actor_pool(use_gpu=True, resources=resources).size == cpus


def _fatbin(entries: list[tuple[int, bytes]]) -> bytes:
    body = b""
    for arch, payload in entries:
        fields = [2, 0x0101, ENTRY.size, len(payload), 0, len(payload), 0, 0, arch, 64, 0, 0x11]
        body += ENTRY.pack(*fields) + payload
    return CONTAINER.pack(FATBIN_MAGIC, 1, CONTAINER.size, len(body)) + body


def test_fatbin_prune_blanks_other_architectures_in_place():
    blob = bytearray(b"\x00" * 8 + _fatbin([(80, b"A" * 64), (90, b"B" * 32), (120, b"C" * 16)]) + b"\x00" * 8 + _fatbin([(90, b"D" * 8)]))
    before = len(blob)
    tally = prune(blob, 0, len(blob), keep={90})
    assert len(blob) == before  # offsets and sizes untouched
    assert b"A" not in blob and b"C" not in blob and b"B" * 32 in blob and b"D" * 8 in blob
    assert tally == {"sm_80 blanked": 64, "sm_90 kept": 40, "sm_120 blanked": 16}
    assert struct.unpack_from("<I", blob, 8)[0] == FATBIN_MAGIC
