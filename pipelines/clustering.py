"""Constrained average-linkage clustering of track prototypes on a FAISS similarity index.

Candidate pairs come from a k-nearest-neighbour search (inner product on unit vectors = cosine).
Pairs are visited from most to least similar; two clusters merge when the average similarity
between all their members is at least ``threshold`` and no member of one was on screen in the same
frame as a member of the other (two faces in one frame are two people). The average is exact and
cheap: with unit vectors, mean pairwise similarity = sum(A) . sum(B) / (|A| |B|). With
``max_link_gap``, two clusters of several members each also need their average to be within that gap
of how alike each one's own members are (within(A) = (|sum(A)|^2 - |A|) / (|A| (|A| - 1))): two
tight clusters that are only moderately alike are two people, however close the average is to the
threshold. Finally, members far from their cluster's centroid are ejected to singletons.
"""

from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np


@dataclass
class ClusterResult:
    labels: np.ndarray  # (n,) cluster index per item, 0..k-1


def _within(total: np.ndarray, n: int) -> float:
    """Mean similarity between distinct members of a cluster of ``n`` unit vectors summing to ``total``."""
    return (float(total @ total) - n) / (n * (n - 1))


def _faiss_index(dim: int) -> faiss.Index:
    index: faiss.Index = faiss.IndexFlatIP(dim)
    if hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0:  # pragma: no cover - GPU only
        index = faiss.index_cpu_to_all_gpus(index)
    return index


def cluster_prototypes(
    vectors: np.ndarray,
    cannot_link: set[tuple[int, int]],
    threshold: float,
    outlier_similarity: float,
    knn: int,
    max_link_gap: float | None,
) -> ClusterResult:
    n = len(vectors)
    if n == 0:
        return ClusterResult(np.zeros(0, np.int64))
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    index = _faiss_index(x.shape[1])
    index.add(x)
    sims, nbrs = index.search(x, min(n, knn))

    edges = []
    for i in range(n):
        for s, j in zip(sims[i], nbrs[i]):
            if j > i and s >= threshold:
                edges.append((float(s), i, int(j)))
    edges.sort(reverse=True)

    parent = list(range(n))
    sums = {i: x[i].astype(np.float64).copy() for i in range(n)}
    members: dict[int, list[int]] = {i: [i] for i in range(n)}
    blocked: dict[int, set[int]] = {i: set() for i in range(n)}
    for a, b in cannot_link:
        blocked[a].add(b)
        blocked[b].add(a)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for _, i, j in edges:
        ri, rj = find(i), find(j)
        if ri == rj:
            continue
        avg = float(sums[ri] @ sums[rj]) / (len(members[ri]) * len(members[rj]))
        if avg < threshold:
            continue
        if any(m in blocked[ri] for m in members[rj]):
            continue
        if max_link_gap is not None and len(members[ri]) > 1 and len(members[rj]) > 1:
            if avg < min(_within(sums[ri], len(members[ri])), _within(sums[rj], len(members[rj]))) - max_link_gap:
                continue
        if len(members[ri]) < len(members[rj]):
            ri, rj = rj, ri
        parent[rj] = ri
        sums[ri] += sums.pop(rj)
        members[ri].extend(members.pop(rj))
        blocked[ri] |= blocked.pop(rj)

    groups: list[list[int]] = []
    for root, mem in members.items():
        centroid = sums[root] / max(np.linalg.norm(sums[root]), 1e-12)
        sim = x[mem] @ centroid.astype(np.float32)
        keep = [m for m, s in zip(mem, sim) if s >= outlier_similarity or len(mem) == 1]
        ejected = [m for m in mem if m not in keep]
        if not keep:  # every member is far from the centroid: all become singletons
            ejected, keep = mem, []
        if keep:
            groups.append(keep)
        groups.extend([m] for m in ejected)

    groups.sort(key=min)
    labels = np.empty(n, np.int64)
    for k, mem in enumerate(groups):
        labels[mem] = k
    return ClusterResult(labels)
