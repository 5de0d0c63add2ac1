"""Screen time computed on request from a run's artifacts and its current corrections (milliseconds),
and the per-second timeline derived from it."""

from __future__ import annotations

from typing import Any, Optional

from .. import intervals as iv
from ..config import resolve_config
from ..corrections import Resolved
from ..layout import RunLayout
from ..schemas import ScreentimeReport
from ..screentime import ScreentimeInputs, compute_screentime
from ..stage_settings import ScreentimeConfig
from ..storage import Storage
from .inputs import resolved_inputs
from .view import RunView, require_clusters


def _config(preset: str, mode: Optional[str]) -> ScreentimeConfig:
    overrides: dict[str, Any] = {"screentime.preset": preset}
    if mode:
        overrides["screentime.mode"] = mode
    return resolve_config(None, overrides).config.screentime


def _report(inputs: ScreentimeInputs, resolved: Resolved, cfg: ScreentimeConfig, cast_names: dict[str, str]) -> ScreentimeReport:
    report = compute_screentime(inputs, cfg, cast_names)
    report.diagnostics["corrections_unattached"] = len(resolved.unattached)
    report.diagnostics["corrections_conflicts"] = len(resolved.conflicts)
    return report


def live_screentime(storage: Storage, layout: RunLayout, cast_names: dict[str, str], preset: str = "default", mode: Optional[str] = None) -> ScreentimeReport:
    require_clusters(storage, layout)
    cfg = _config(preset, mode)
    inputs, resolved = resolved_inputs(storage, layout, with_detections=cfg.mode == "faces")
    return _report(inputs, resolved, cfg, cast_names)


def view_screentime(view: RunView, cast_names: dict[str, str]) -> ScreentimeReport:
    """Default screen time of a view already loaded (tracks mode needs nothing more from storage)."""
    return _report(view.inputs, view.resolved, _config("default", None), cast_names)


def per_second(report: ScreentimeReport) -> tuple[list[str], list[dict[str, Any]]]:
    """(people, rows): seconds covered per person (cast name, or identity id when unnamed) in each
    one-second bin of the episode."""
    rows = {r.name: iv.seconds_per_bin(r.intervals, report.math.video_duration_s) for r in report.timeline if r.intervals}
    for ident in report.identities:
        if ident.cast_id is None:
            rows[ident.identity_id] = iv.seconds_per_bin(ident.intervals, report.math.video_duration_s)
    rows.pop("Unassigned", None)
    n = max((len(v) for v in rows.values()), default=0)
    seconds = [{"second": k, "on_screen": {name: round(v[k], 3) for name, v in rows.items() if v[k] > 0}} for k in range(n)]
    return sorted(rows), seconds
