"""Stage 4: name identities from the show's facebank (see :mod:`pipelines.naming` for the rules).

The show is the ``ep_id``'s prefix. Each identity's centroid is scored against the bank by the show's
facebank actor; ``identity_names.json`` keeps every identity's top suggestions and the automatic name, if the
rules allowed one. Human decisions are applied on top whenever the run is read, so they always win.
A change to the facebank or the show's calibration re-runs this stage (and screen time after it).
"""

from __future__ import annotations

import numpy as np

from ..artifacts import read_model
from ..ids import parse_ep_id
from ..layout import calibration_key
from ..naming import NamingRules, decide, default_threshold, identity_pairs
from ..registry import CLUSTER_CENTROIDS, IDENTITIES, IDENTITY_NAMES
from ..schemas import Calibration, NamingFile, StageName
from ..shows import bank, facebank
from ..storage import Storage
from .base import RunContext, StageSpec

STAGE = StageName.naming


def auto_threshold(storage: Storage, show_id: str, embedding_model: str, configured: float | None) -> float:
    """Configured value > the show's calibration for this embedder > the embedder's default."""
    if configured is not None:
        return configured
    key = calibration_key(show_id)
    if storage.exists(key):
        calibration = read_model(storage, key, Calibration)
        if calibration.embedding_model == embedding_model:
            return calibration.auto_threshold
    return default_threshold(embedding_model)


def run(ctx: RunContext) -> dict[str, float]:
    cfg = ctx.config.naming
    layout, storage = ctx.layout, ctx.storage
    show = parse_ep_id(layout.ep_id).show
    ctx.progress(STAGE, 0, 1, step="naming")
    identities = IDENTITIES.read(storage, layout)
    centroids = {c.identity_id: c.centroid for c in CLUSTER_CENTROIDS.read(storage, layout).centroids}
    model = identities.embedding_model
    rules = NamingRules.from_config(cfg, auto_threshold(storage, show, model, cfg.auto_threshold))
    ids = [i.identity_id for i in identities.identities if i.identity_id in centroids and i.kind == "face"]  # extras and junk: a reviewer's call
    faces = 0
    scores: list[dict[str, float]] = [{} for _ in ids]
    if cfg.enabled and ids:
        faces, scores = bank.score(storage, show, model, np.asarray([centroids[i] for i in ids], np.float32))
    identity_of = {t: i.identity_id for i in identities.identities for t in i.track_ids}
    namings = decide(ids, scores, identity_pairs(identities.co_occurring_tracks, identity_of), rules)
    IDENTITY_NAMES.write(
        storage,
        layout,
        NamingFile(
            ep_id=layout.ep_id,
            run_id=layout.run_id,
            show_id=show,
            embedding_model=model,
            auto_threshold=rules.auto_threshold,
            margin=rules.margin,
            bank_faces=faces,
            identities=namings,
        ),
    )
    ctx.progress(STAGE, 1, 1, step="naming")
    other_models = {m: n for m, n in facebank.models_in_bank(storage, show).items() if m != model} if not faces else {}
    return {
        "bank_faces": faces,
        "auto_named": sum(1 for n in namings if n.cast_id),
        "recognised_not_cast": sum(1 for n in namings if n.guest_kind),
        "bank_faces_other_models": sum(other_models.values()),
    }


def fingerprint_inputs(ctx: RunContext) -> list:
    """The facebank's contents and the show's calibration: a new face or threshold names again."""
    show = parse_ep_id(ctx.layout.ep_id).show
    key = calibration_key(show)
    return [facebank.bank_version(ctx.storage, show), ctx.storage.read_text(key) if ctx.storage.exists(key) else None]


SPEC = StageSpec(name=STAGE, version=1, outputs=(IDENTITY_NAMES,), run=run, fingerprint_inputs=fingerprint_inputs)
