"""Screen time as a plain-text table, for the CLI and the demo."""

from __future__ import annotations

from ..schemas import ScreentimeReport


def format_table(report: ScreentimeReport) -> str:
    lines = []
    if report.metrics:
        lines.append(f"{'cast member':<24} {'seconds':>9} {'speaking':>9} {'tracks':>7}  named")
        for m in report.metrics:
            speaking = f"{m.speaking_s:>9.2f}" if m.speaking_s is not None else f"{'-':>9}"
            lines.append(f"{m.name:<24} {m.visual_s:>9.2f} {speaking} {m.tracks_count:>7}  {m.named_by or '-'}")
        lines.append("")
    lines.append(f"{'identity':<10} {'cast':<14} {'seconds':>9} {'tracks':>7}  first seen  named / suggestion")
    for ident in report.identities:
        first = ident.intervals[0][0] if ident.intervals else 0.0
        how: str
        if ident.cast_id:
            how = ident.name_source or "-"
        elif ident.kind == "extra":
            how = "extra"
        elif ident.kind in ("guest", "not_face"):
            how = ident.kind + (f" {ident.label}" if ident.label else "")
        else:
            how = f"? {ident.suggestions[0].cast_id} {ident.suggestions[0].score:.2f}" if ident.suggestions else "-"
        lines.append(f"{ident.identity_id:<10} {(ident.cast_id or '-'):<14} {ident.visual_s:>9.2f} {len(ident.track_ids):>7}  {first:8.2f}s  {how}")
    if report.speakers:
        lines.append("")
        lines.append(f"{'voice':<10} {'speaking':>9}  who")
        for link in report.speakers:
            who = link.cast_id or link.identity_id or "unnamed speaker"
            lines.append(f"{link.voice_id:<10} {link.speech_s:>9.2f}  {who}{f' ({link.source})' if link.source else ''}")
    junk, extras = report.diagnostics.get("junk_s", 0), report.diagnostics.get("extras_s", 0)
    lines.append(
        f"(video {report.math.video_duration_s:.1f}s, preset {report.preset}, mode {report.mode}; not counted: junk {junk}s; extras, listed apart: {extras}s)"
    )
    return "\n".join(lines)
