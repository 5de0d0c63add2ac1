"""Stage 4: screen time per cast member and per identity -> analytics/screentime.{json,csv}, and the
analyst's tidy table beside it (analytics/export.{csv,parquet}, :mod:`pipelines.exports`)."""

from __future__ import annotations

from ..artifacts import write_csv
from ..audio import season_voices as voices
from ..exports import write_episode_export
from ..ids import parse_ep_id
from ..registry import CORRECTIONS, EXPORT_CSV, EXPORT_PARQUET, SCREENTIME, SCREENTIME_CSV
from ..review.inputs import resolved_inputs
from ..schemas import CSV_COLUMNS, StageName
from ..screentime import compute_screentime, csv_rows, effective_speech
from ..shows import roster
from .base import RunContext, StageSpec

STAGE = StageName.screentime


def run(ctx: RunContext) -> dict[str, float]:
    layout, storage = ctx.layout, ctx.storage
    cfg = ctx.config.screentime
    ctx.progress(STAGE, 0, 1, step="screentime")
    inputs, resolved = resolved_inputs(storage, layout, with_detections=cfg.mode == "faces", audio=ctx.config.audio)
    report = compute_screentime(inputs, cfg, show_cast_names(ctx))
    report.diagnostics["corrections_unattached"] = len(resolved.unattached)
    SCREENTIME.write(storage, layout, report)
    write_csv(storage, SCREENTIME_CSV.key(layout), CSV_COLUMNS, csv_rows(report))
    write_episode_export(storage, report)
    voices.share_episode(
        storage, report, effective_speech(inputs)[1], inputs.speaker_model
    )  # the show's other episodes link their voices with this one's evidence
    ctx.progress(STAGE, 1, 1, step="screentime")
    return {"cast_members": len(report.metrics), "identities": len(report.identities)}


def show_cast_names(ctx: RunContext) -> dict[str, str]:
    return {**roster.cast_names(ctx.storage, parse_ep_id(ctx.layout.ep_id).show), **ctx.cast_names}


def fingerprint_inputs(ctx: RunContext) -> list:
    """Screen time honours the human corrections, the cast's names and (for speaking time) the show's
    other episodes' voices: a change recomputes it."""
    key = CORRECTIONS.key(ctx.layout)
    audio = ctx.config.audio
    season = voices.season_version(ctx.storage, parse_ep_id(ctx.layout.ep_id).show, ctx.layout.ep_id)
    return [ctx.storage.read_text(key) if ctx.storage.exists(key) else None, show_cast_names(ctx), audio.link_min_s, audio.season_similarity, season]


SPEC = StageSpec(
    name=STAGE,
    version=4,
    outputs=(SCREENTIME, SCREENTIME_CSV, EXPORT_CSV, EXPORT_PARQUET),
    run=run,
    fingerprint_inputs=fingerprint_inputs,
)
