"""Choosing a show's auto-naming threshold from its own confirmed episodes.

Leave-one-episode-out: every episode in which a reviewer named identities is named again by a bank
that holds none of that episode's own faces (photos and the other episodes' confirmed faces only), at
a range of thresholds. Precision = automatic names that match the reviewer's / automatic names;
coverage = seconds of the reviewer's cast identities that got the right automatic name / all of them.
The stored threshold is the lowest one with precision >= ``target_precision`` (the most coverage
that keeps automatic names trustworthy), but never more than ``FLOOR_BELOW_DEFAULT`` below the
embedder's default.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from actors.facebank_actor import FacebankIndex

from ..artifacts import write_model
from ..ids import parse_ep_id
from ..layout import RunLayout, calibration_key, episodes_with_runs, runs_prefix
from ..naming import NamingRules, decide, default_threshold, identity_pairs
from ..review.errors import Conflict
from ..review.live import view_screentime
from ..review.view import load_view
from ..schemas import Calibration
from ..storage import Storage
from . import facebank
from .errors import NothingToCalibrate

THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.30, 0.86, 0.02))
TARGET_PRECISION = 0.98
FLOOR_BELOW_DEFAULT = 0.1
"""The chosen threshold never goes more than this below the embedder's default: a few confirmed
episodes name few identities, and the lowest threshold that is perfect on them is often luck."""


@dataclass
class _Episode:
    ep_id: str
    ids: list[str]
    vectors: np.ndarray
    truth: dict[str, str | None]  # identity -> cast id (None: a guest or not a face)
    seconds: dict[str, float]
    pairs: set[frozenset[str]]


def _confirmed_episode(storage: Storage, ep_id: str, run_id: str) -> _Episode | None:
    try:
        view = load_view(storage, RunLayout(ep_id, run_id))
    except (Conflict, FileNotFoundError):
        return None
    a = view.resolved.assignments
    truth: dict[str, str | None] = {i: c for i, c in a.manual_assignments.items()}
    truth.update({i: None for i in a.marks})
    ids = [i for i in truth if i in view.centroids]
    if not any(truth[i] for i in ids):
        return None
    seconds = {i.identity_id: i.visual_s for i in view_screentime(view, {}).identities}
    identity_of = {t: i.identity_id for i in view.resolved.identities.identities for t in i.track_ids}
    pairs = identity_pairs(view.resolved.identities.co_occurring_tracks, identity_of)
    return _Episode(ep_id, ids, np.asarray([view.centroids[i] for i in ids], np.float32), truth, seconds, pairs)


def calibrate(
    storage: Storage,
    show_id: str,
    embedding_model: str,
    margin: float,
    strong_lead: float,
    run_id: str = "main",
    target_precision: float = TARGET_PRECISION,
) -> Calibration:
    """Replay the show's confirmed episodes, store and return the chosen threshold."""
    episodes = [
        ep
        for ep_id in sorted(e for e in episodes_with_runs(storage) if parse_ep_id(e).show == show_id)
        if run_id in storage.children(runs_prefix(ep_id)) and (ep := _confirmed_episode(storage, ep_id, run_id)) is not None
    ]
    if not episodes:
        raise NothingToCalibrate(f"no episode of {show_id} has identities a reviewer named (run {run_id}): name some first")
    entries = facebank.list_entries(storage, show_id, embedding_model)
    table = []
    per_ep_scores = []
    for ep in episodes:
        held_out = [e for e in entries if e.ep_id != ep.ep_id]
        matrix = np.asarray([e.embedding for e in held_out], np.float32) if held_out else np.zeros((0, 1), np.float32)
        index = FacebankIndex([facebank.label_of(e) for e in held_out], matrix)
        per_ep_scores.append(index.scores(ep.vectors))
    for t in THRESHOLDS:
        named = correct = 0
        covered = total = 0.0
        for ep, scores in zip(episodes, per_ep_scores):
            for n in decide(ep.ids, scores, ep.pairs, NamingRules(t, margin, strong_lead)):
                truth = ep.truth[n.identity_id]
                total += ep.seconds.get(n.identity_id, 0.0) if truth else 0.0
                if n.cast_id:
                    named += 1
                    if n.cast_id == truth:
                        correct += 1
                        covered += ep.seconds.get(n.identity_id, 0.0)
        table.append(
            {"threshold": t, "precision": round(correct / named, 4) if named else 1.0, "coverage": round(covered / total, 4) if total else 0.0, "named": named}
        )
    if not any(row["named"] for row in table):
        raise NothingToCalibrate(
            f"no confirmed episode of {show_id} could be named by the rest of the bank (photos, or other episodes' faces): nothing stored; add photos or confirm a second episode"
        )
    floor = default_threshold(embedding_model) - FLOOR_BELOW_DEFAULT
    good = [row for row in table if row["precision"] >= target_precision and row["named"] and row["threshold"] >= floor - 1e-9]
    chosen = good[0] if good else table[-1]
    calibration = Calibration(
        show_id=show_id,
        embedding_model=embedding_model,
        auto_threshold=chosen["threshold"],
        precision=chosen["precision"],
        coverage=chosen["coverage"],
        episodes=[ep.ep_id for ep in episodes],
        table=table,
    )
    write_model(storage, calibration_key(show_id), calibration)
    return calibration
