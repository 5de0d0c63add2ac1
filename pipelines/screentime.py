"""Screen time from tracks: track -> identity -> cast member.

Each counted track contributes its estimated on-screen span (``tracks`` mode) or the chained runs of
its detections (``faces`` mode). Spans are merged per identity and per cast member, closing gaps up
to ``gap_tolerance_s`` but never across a shot cut; a member's seconds are the length of the union,
so overlapping tracks of one person never count twice.

Unlike the replaced system, no coverage gate divides sampled faces by detections: a track counts when
its mean detector score reaches ``quality_min``, however long it is.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from . import intervals as iv
from .audio.link import identity_speech, link_voices, speaking_times, speech_of, voice_casts
from .audio.split import split_merged_voices
from .ids import face_id
from .schemas import (
    Assignments,
    CastMetrics,
    DetectionRow,
    FaceRow,
    IdentitiesFile,
    IdentityNaming,
    IdentityScreentime,
    ScreentimeMath,
    ScreentimeReport,
    Shot,
    SpeechTurn,
    TimelineRow,
    TrackRow,
    VoiceEvidence,
)
from .stage_settings import AudioConfig, ScreentimeConfig, default_of
from .tracking.spans import detection_span, shot_index

UNASSIGNED = "Unassigned"


@dataclass
class ScreentimeInputs:
    ep_id: str
    run_id: str
    fps: float
    stride: int
    duration_s: float
    shots: list[Shot]
    tracks: list[TrackRow]
    identities: IdentitiesFile
    assignments: Assignments
    faces: list[FaceRow]
    detections: list[DetectionRow] | None = None  # needed in faces mode only
    naming: dict[str, IdentityNaming] = field(default_factory=dict)  # suggestions from the facebank, by identity
    speech: list[SpeechTurn] | None = None  # from the audio stage, when it ran
    voice_labels: list[tuple[list[list[float]], str | None]] = field(default_factory=list)  # a reviewer's voice assignments: (anchor, cast id)
    voice_centroids: dict[str, list[float]] = field(default_factory=dict)  # voice -> unit speaker embedding
    speaker_model: str | None = None  # what embedded them
    speech_embeddings: np.ndarray | None = None  # one unit speaker embedding per speech turn
    season_voices: list[VoiceEvidence] = field(default_factory=list)  # the show's other episodes' voices
    voice_link_min_s: float = default_of(AudioConfig, "link_min_s")
    voice_similarity: float = default_of(AudioConfig, "season_similarity")


def name_of(assignments: Assignments, identity_id: str) -> tuple[str | None, str | None]:
    """(cast_id, name source) of an identity: a human's name, else an automatic one, else none."""
    if identity_id in assignments.manual_assignments:
        return assignments.manual_assignments[identity_id], "manual"
    if identity_id in assignments.auto_assignments:
        return assignments.auto_assignments[identity_id], "auto"
    return None, None


def resolve_cast(inputs: ScreentimeInputs) -> dict[int, str | None]:
    """cast_id per track: face exclusions > track override > cluster assignment (manual, then automatic)
    > none. Tracks of an identity marked not-a-face are not counted at all."""
    identity_of = {t: ident.identity_id for ident in inputs.identities.identities for t in ident.track_ids}
    marks = inputs.assignments.marks
    junk = {i.identity_id for i in inputs.identities.identities if i.kind == "junk" and marks.get(i.identity_id) != "face"}
    excluded = set(inputs.assignments.face_exclusions)
    embedded_faces: dict[int, list[str]] = defaultdict(list)
    for f in inputs.faces:
        if f.embedding_row is not None:
            embedded_faces[f.track_id].append(f.face_id)
    out: dict[int, str | None] = {}
    for t in inputs.tracks:
        faces = embedded_faces.get(t.track_id, [])
        if faces and all(f in excluded for f in faces):
            continue  # every face a human looked at was excluded: the track does not count
        override = inputs.assignments.track_overrides.get(str(t.track_id))
        ident = identity_of.get(t.track_id)
        if ident and (marks.get(ident) == "not_face" or ident in junk) and not override:
            continue  # not a face: counts nowhere (junk is listed for review with its reason)
        out[t.track_id] = override or (name_of(inputs.assignments, ident)[0] if ident else None)
    return out


def _track_spans(inputs: ScreentimeInputs, track: TrackRow, cfg: ScreentimeConfig, excluded: set[str]) -> list[iv.Span]:
    if cfg.mode == "tracks":
        return [(track.start_s, track.end_s)]
    frames = sorted(d.frame_idx for d in (inputs.detections or []) if d.track_id == track.track_id and face_id(track.track_id, d.frame_idx) not in excluded)
    if not frames:
        return []
    starts = [s.start_frame for s in inputs.shots]
    max_gap = max(cfg.gap_tolerance_s * inputs.fps, inputs.stride)
    spans = []
    run_start = prev = frames[0]
    for f in frames[1:] + [None]:  # type: ignore[list-item]
        if f is None or f - prev > max_gap:
            shot = inputs.shots[shot_index(inputs.shots, run_start, starts)]
            spans.append(detection_span(run_start, prev, shot, inputs.stride, inputs.fps))
            if f is not None:
                run_start = f
        if f is not None:
            prev = f
    return spans


def _kind(inputs: ScreentimeInputs, identity_id: str, base_kinds: dict[str, str]) -> str:
    """An unnamed identity's kind: what a reviewer marked it, else extra (from clustering), else unknown."""
    mark = inputs.assignments.marks.get(identity_id)
    if mark in ("guest", "not_face"):
        return mark
    return "extra" if base_kinds.get(identity_id) == "extra" and mark != "face" else "unknown"


def _junk_seconds(inputs: ScreentimeInputs) -> float:
    """Seconds the junk identities (not restored) would have added: kept out, reported."""
    junk = {t for i in inputs.identities.identities if i.kind == "junk" and inputs.assignments.marks.get(i.identity_id) != "face" for t in i.track_ids}
    return iv.total(iv.union((t.start_s, t.end_s) for t in inputs.tracks if t.track_id in junk))


@dataclass
class _Tally:
    """The tracks that count, grouped: by identity, by cast member, unnamed, extras (read by the report's parts)."""

    inputs: ScreentimeInputs
    cfg: ScreentimeConfig
    cast_of: dict[int, Optional[str]]
    identity_of: dict[int, str]
    counted: list[TrackRow]
    low_quality: int
    spans_of: dict[int, list[iv.Span]]
    by_identity: dict[str, list[TrackRow]] = field(default_factory=lambda: defaultdict(list))
    by_cast: dict[str, list[TrackRow]] = field(default_factory=lambda: defaultdict(list))
    unassigned: list[TrackRow] = field(default_factory=list)
    extras: list[TrackRow] = field(default_factory=list)

    def spans(self, tracks: list[TrackRow]) -> list[iv.Span]:
        """The tracks' spans merged (gaps under ``gap_tolerance_s`` bridged, never across a cut), padded."""
        cut_times = [s.start_s for s in self.inputs.shots[1:]]
        merged = iv.bridge_gaps([s for t in tracks for s in self.spans_of[t.track_id]], self.cfg.gap_tolerance_s, cut_times)
        return iv.pad(merged, self.cfg.edge_padding_s, 0.0, self.inputs.duration_s) if self.cfg.edge_padding_s else merged


def _tally(inputs: ScreentimeInputs, cfg: ScreentimeConfig) -> _Tally:
    cast_of = resolve_cast(inputs)
    counted = [t for t in inputs.tracks if t.track_id in cast_of and t.mean_conf >= cfg.quality_min]
    low_quality = sum(1 for t in inputs.tracks if t.track_id in cast_of and t.mean_conf < cfg.quality_min)
    excluded = set(inputs.assignments.face_exclusions)
    tally = _Tally(
        inputs,
        cfg,
        cast_of,
        {t: ident.identity_id for ident in inputs.identities.identities for t in ident.track_ids},
        counted,
        low_quality,
        {t.track_id: _track_spans(inputs, t, cfg, excluded) for t in counted},
    )
    base_kinds: dict[str, str] = {ident.identity_id: ident.kind for ident in inputs.identities.identities}
    for t in counted:
        ident = tally.identity_of.get(t.track_id, f"track_{t.track_id:04d}")
        tally.by_identity[ident].append(t)
        cast = cast_of[t.track_id]
        if cast:
            tally.by_cast[cast].append(t)
        elif _kind(inputs, ident, base_kinds) == "extra":
            tally.extras.append(t)  # reported apart, not as someone unnamed
        else:
            tally.unassigned.append(t)
    return tally


def _identity_rows(tally: _Tally) -> list[IdentityScreentime]:
    inputs = tally.inputs
    base_kinds: dict[str, str] = {ident.identity_id: ident.kind for ident in inputs.identities.identities}
    rep_faces = {ident.identity_id: ident.rep_face_id for ident in inputs.identities.identities}
    rows = []
    for ident, ts in tally.by_identity.items():
        spans = tally.spans(ts)
        casts = {tally.cast_of[t.track_id] for t in ts}
        cast_id = casts.pop() if len(casts) == 1 else None
        named, source = name_of(inputs.assignments, ident)
        naming = inputs.naming.get(ident)
        rejected = set(inputs.assignments.rejected.get(ident, []))
        rows.append(
            IdentityScreentime(
                identity_id=ident,
                cast_id=cast_id,
                name_source=source if cast_id and cast_id == named else ("manual" if cast_id else None),  # type: ignore[arg-type]
                kind="cast" if cast_id else _kind(inputs, ident, base_kinds),
                label=inputs.assignments.guest_labels.get(ident),
                confidence=naming.confidence if naming and source == "auto" else None,
                suggestions=[sg.model_copy(update={"rejected": sg.cast_id in rejected}) for sg in naming.suggestions] if naming else [],
                visual_s=round(iv.total(spans), 3),
                intervals=_rounded(spans),
                track_ids=sorted(t.track_id for t in ts),
                rep_face_id=rep_faces.get(ident),
            )
        )
    rows.sort(key=lambda i: (-i.visual_s, i.identity_id))
    return rows


def _rounded(spans: list[iv.Span]) -> list[list[float]]:
    return [[round(a, 3), round(b, 3)] for a, b in spans]


def _cast_rows(
    tally: _Tally, identities: list[IdentityScreentime], cast_names: dict[str, str]
) -> tuple[list[CastMetrics], list[TimelineRow], dict[str, list[iv.Span]]]:
    """(metrics per cast member, timeline rows, each member's spans)."""
    metrics: list[CastMetrics] = []
    timeline: list[TimelineRow] = []
    cast_spans: dict[str, list[iv.Span]] = {}
    source_of = {i.identity_id: i.name_source for i in identities}
    for cast, ts in tally.by_cast.items():
        spans = cast_spans[cast] = tally.spans(ts)
        sources = {source_of.get(tally.identity_of.get(t.track_id, ""), "manual") or "manual" for t in ts}
        seconds = iv.total(spans)
        weight = sum(t.end_s - t.start_s for t in ts) or 1.0
        metrics.append(
            CastMetrics(
                name=cast_names.get(cast, cast),
                cast_id=cast,
                person_id=cast,
                named_by=sources.pop() if len(sources) == 1 else "mixed",  # type: ignore[arg-type]
                face_visible_seconds=round(seconds, 3),
                visual_s=round(seconds, 3),
                speaking_s=None,
                both_s=None,
                confidence=round(sum(t.mean_conf * (t.end_s - t.start_s) for t in ts) / weight, 4),
                tracks_count=len(ts),
                faces_count=sum(t.frame_count for t in ts),
            )
        )
        timeline.append(TimelineRow(name=cast_names.get(cast, cast), cast_id=cast, intervals=_rounded(spans)))
    metrics.sort(key=lambda m: (-m.visual_s, m.name))
    timeline.sort(key=lambda r: r.name)
    timeline.append(TimelineRow(name=UNASSIGNED, cast_id=None, intervals=_rounded(tally.spans(tally.unassigned))))
    return metrics, timeline, cast_spans


def _diagnostics(tally: _Tally, identities: int) -> dict[str, float]:
    inputs = tally.inputs
    return {
        "tracks_total": len(inputs.tracks),
        "tracks_counted": len(tally.counted),
        "tracks_below_quality_min": tally.low_quality,
        "tracks_excluded_by_faces": sum(1 for t in inputs.tracks if t.track_id not in tally.cast_of),
        "tracks_without_identity": sum(1 for t in tally.counted if t.track_id not in tally.identity_of),
        "identities": identities,
        "unassigned_s": round(iv.total(tally.spans(tally.unassigned)), 3),
        "extras_s": round(iv.total(tally.spans(tally.extras)), 3),
        "junk_s": round(_junk_seconds(inputs), 3),
    }


def compute_screentime(inputs: ScreentimeInputs, cfg: ScreentimeConfig, cast_names: dict[str, str] | None = None) -> ScreentimeReport:
    """Seconds on screen per cast member and per identity (and, with speech, speaking seconds)."""
    cast_names = cast_names or {}
    tally = _tally(inputs, cfg)
    identities = _identity_rows(tally)
    metrics, timeline, cast_spans = _cast_rows(tally, identities, cast_names)
    union_all = iv.union(s for spans in cast_spans.values() for s in spans)
    cast_sum = sum(iv.total(s) for s in cast_spans.values())
    math = ScreentimeMath(
        cast_union_coverage_s=round(iv.total(union_all), 3),
        cast_sum_time_s=round(cast_sum, 3),
        multi_cast_overlap_s=round(cast_sum - iv.total(union_all), 3),
        video_duration_s=round(inputs.duration_s, 3),
    )
    report = ScreentimeReport(
        ep_id=inputs.ep_id,
        run_id=inputs.run_id,
        preset=cfg.preset,
        mode=cfg.mode,
        metrics=metrics,
        identities=identities,
        timeline=timeline,
        math=math,
        diagnostics=_diagnostics(tally, len(identities)),
    )
    if inputs.speech is not None:
        _add_speech(report, inputs, cast_spans, cast_names)
    return report


def effective_speech(inputs: ScreentimeInputs) -> tuple[list[SpeechTurn], dict[str, list[float]]]:
    """The episode's speech turns and voice centroids, with voices the diarizer merged split by the
    show's other episodes (:mod:`pipelines.audio.split`)."""
    return split_merged_voices(
        inputs.speech or [], inputs.speech_embeddings, inputs.voice_centroids, inputs.season_voices, inputs.voice_similarity, inputs.voice_link_min_s
    )


def _add_speech(report: ScreentimeReport, inputs: ScreentimeInputs, cast_spans: dict[str, list[iv.Span]], cast_names: dict[str, str]) -> None:
    """Voices linked to people, and speaking / both / voice-only seconds per cast member and identity."""
    on_screen = {i.identity_id: [(a, b) for a, b in i.intervals] for i in report.identities if i.kind not in ("extra", "junk", "not_face")}
    turns, centroids = effective_speech(inputs)
    links = link_voices(
        turns,
        on_screen,
        {i.identity_id: i.cast_id for i in report.identities},
        voice_casts(turns, inputs.voice_labels),
        inputs.voice_link_min_s,
        centroids,
        inputs.season_voices,
        inputs.voice_similarity,
    )
    report.speakers = links
    report.identity_speech = identity_speech(links, on_screen)
    speech = speech_of(links, "cast_id")
    for m in report.metrics:
        m.speaking_s, m.both_s, m.voice_only_s = speaking_times(speech.get(m.cast_id or "", []), cast_spans.get(m.cast_id or "", []))
    for cast in sorted(set(speech) - {m.cast_id for m in report.metrics}):  # heard, never seen
        s, b, v = speaking_times(speech[cast], [])
        report.metrics.append(
            CastMetrics(
                name=cast_names.get(cast, cast),
                cast_id=cast,
                person_id=cast,
                named_by="manual",
                face_visible_seconds=0.0,
                visual_s=0.0,
                speaking_s=s,
                both_s=b,
                voice_only_s=v,
                confidence=0.0,
                tracks_count=0,
                faces_count=0,
            )
        )
    report.diagnostics["speech_s"] = round(iv.total(iv.union((t.start, t.end) for t in inputs.speech or [])), 3)
    report.diagnostics["unnamed_speakers"] = sum(1 for link in links if not link.cast_id)


def csv_rows(report: ScreentimeReport) -> list[dict]:
    """Cast members first, then identities nobody has named yet (name = identity id)."""
    rows = [m.model_dump() for m in report.metrics]
    for ident in report.identities:
        if ident.cast_id is None:
            rows.append(
                {
                    "name": ident.identity_id,
                    "cast_id": None,
                    "person_id": ident.identity_id,
                    "face_visible_seconds": ident.visual_s,
                    "visual_s": ident.visual_s,
                    "tracks_count": len(ident.track_ids),
                }
            )
    return rows
