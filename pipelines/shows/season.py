"""The season table: screen time per episode and cast member of one show, as the review shows it now
(human corrections and automatic names applied), for the API and catalog summaries alike."""

from __future__ import annotations

from typing import Any

from ..exports import episode_rows
from ..ids import parse_ep_id
from ..layout import RunLayout, episodes_with_runs, runs_prefix
from ..review.errors import Conflict
from ..review.live import live_screentime
from ..schemas import ScreentimeReport
from ..storage import Storage
from . import roster

SEASON_COLUMNS = ("ep_id", "cast_id", "name", "seconds", "share_of_episode", "named_by", "speaking_s", "both_s", "voice_only_s", "episode_duration_s")


def season_reports(
    storage: Storage, show_id: str, run_id: str = "main", ep_ids: list[str] | None = None
) -> tuple[list[ScreentimeReport], list[dict[str, str]]]:
    """(screen time of every episode of the show in the data dir, or of ``ep_ids``, as the review shows it
    now; the episodes without a clustered ``run_id``, with the reason)."""
    names = roster.cast_names(storage, show_id)
    candidates = ep_ids if ep_ids is not None else sorted(e for e in episodes_with_runs(storage) if parse_ep_id(e).show == show_id)
    reports: list[ScreentimeReport] = []
    skipped: list[dict[str, str]] = []
    for ep_id in candidates:
        if run_id not in storage.children(runs_prefix(ep_id)):
            skipped.append({"ep_id": ep_id, "reason": f"no run {run_id}"})
            continue
        try:
            reports.append(live_screentime(storage, RunLayout(ep_id, run_id), names))
        except (Conflict, FileNotFoundError) as exc:
            skipped.append({"ep_id": ep_id, "reason": str(exc)})
    return reports, skipped


def season_export(storage: Storage, show_id: str, run_id: str = "main") -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """(the analyst's rows (:mod:`pipelines.exports`) for every episode of the show in the data dir, skipped episodes)."""
    reports, skipped = season_reports(storage, show_id, run_id)
    return [row for report in reports for row in episode_rows(report)], skipped


def season_table(storage: Storage, show_id: str, run_id: str = "main", ep_ids: list[str] | None = None) -> dict[str, Any]:
    """``rows``: one per episode and cast member (seconds, share of the episode, how it was named);
    ``episodes``: per episode, the duration, unnamed and guest seconds and identities to review;
    ``totals``: season seconds on screen and speaking per cast member. Episodes without a clustered ``run_id`` are listed
    under ``skipped`` with the reason."""
    names = roster.cast_names(storage, show_id)
    rows: list[dict[str, Any]] = []
    episodes: list[dict[str, Any]] = []
    totals: dict[str, float] = {}
    speaking: dict[str, float] = {}
    reports, skipped = season_reports(storage, show_id, run_id, ep_ids)
    for report in reports:
        ep_id = report.ep_id
        duration = report.math.video_duration_s or 1.0
        for m in report.metrics:
            rows.append(
                {
                    "ep_id": ep_id,
                    "cast_id": m.cast_id,
                    "name": m.name,
                    "seconds": m.visual_s,
                    "share_of_episode": round(m.visual_s / duration, 4),
                    "named_by": m.named_by,
                    "speaking_s": m.speaking_s,
                    "both_s": m.both_s,
                    "voice_only_s": m.voice_only_s,
                    "episode_duration_s": report.math.video_duration_s,
                }
            )
            totals[m.cast_id or m.name] = round(totals.get(m.cast_id or m.name, 0.0) + m.visual_s, 3)
            speaking[m.cast_id or m.name] = round(speaking.get(m.cast_id or m.name, 0.0) + (m.speaking_s or 0.0), 3)
        unnamed = [i for i in report.identities if i.cast_id is None]
        episodes.append(
            {
                "ep_id": ep_id,
                "duration_s": report.math.video_duration_s,
                "cast_s": report.math.cast_union_coverage_s,
                "guest_s": round(sum(i.visual_s for i in unnamed if i.kind == "guest"), 3),
                "unnamed_s": round(sum(i.visual_s for i in unnamed if i.kind == "unknown"), 3),
                "needs_review": sum(1 for i in unnamed if i.kind == "unknown"),
                "auto_named": sum(1 for i in report.identities if i.name_source == "auto"),
                "manually_named": sum(1 for i in report.identities if i.name_source == "manual"),
            }
        )
    return {
        "show_id": show_id,
        "run_id": run_id,
        "rows": rows,
        "episodes": episodes,
        "totals": [{"cast_id": c, "name": names.get(c, c), "seconds": s, "speaking_s": speaking[c]} for c, s in sorted(totals.items(), key=lambda kv: -kv[1])],
        "skipped": skipped,
    }
