"""Human corrections: cluster and track assignments, face exclusions, merge, move and split.

Each is an anchored entry appended to the run's corrections log (see :mod:`pipelines.corrections`),
so it survives any re-run. A cast id must name a cast member of the episode's show.
"""

from __future__ import annotations

from typing import Optional

from fastapi import APIRouter, Header, HTTPException
from fastapi import Path as PathParam

from pipelines.ids import parse_face_id
from pipelines.service import CorrectionBuilder, assignments_summary, corrections_list, load_view, record_correction, roster, undo_entries, voice_spans

from ..context import EP, IDENTITY, RUN, RUN_PATH, VOICE, Ctx
from ..models import (
    AssignmentsResponse,
    ClusterAssignRequest,
    CorrectionByIds,
    FaceExclusionRequest,
    MarkRequest,
    MergeRequest,
    MoveTrackRequest,
    RejectRequest,
    SplitRequest,
    TrackAssignRequest,
    UndoRequest,
    VoiceAssignRequest,
)
from ..responses import CorrectionsList

router = APIRouter(tags=["corrections"])
IF_MATCH = Header(None, alias="If-Match", max_length=200, description="the cluster_version the ids come from (as the body's cluster_version)")


def _version(req: CorrectionByIds, if_match: Optional[str]) -> Optional[str]:
    """The clustering version the request's ids come from: the body's, else an ``If-Match`` header's."""
    if req.cluster_version is not None:
        return req.cluster_version
    if if_match is None or if_match.strip() == "*":
        return None
    return if_match.strip().removeprefix("W/").strip('"')


def _check_cast(ctx: Ctx, ep_id: str, cast_id: Optional[str]) -> None:
    """A cast id names a cast member of the episode's own show (404 unknown, 409 another show's)."""
    if cast_id is None:
        return
    member = roster.find_cast(ctx.storage, cast_id)
    if member is None:
        raise HTTPException(404, f"Cast member {cast_id} not found: create it under /shows/{{show}}/cast first")
    show = ctx.episode(ep_id)["show_slug"]
    if member.show_id != show:
        raise HTTPException(409, f"cast member {cast_id} belongs to show {member.show_id}, not to {ep_id}'s show {show}")


def _append(ctx: Ctx, ep_id: str, run_id: str, build: CorrectionBuilder, request: Optional[tuple[CorrectionByIds, Optional[str]]] = None) -> dict:
    """Record the correction ``build`` makes (:func:`pipelines.service.record_correction`). ``request``:
    the correction's body and its ``If-Match`` header, for the clustering version its ids come from (409
    when the run was re-clustered since) and its ``group`` (a bulk action's corrections share it)."""
    cluster_version = _version(*request) if request else None
    group = request[0].group if request else None
    return record_correction(ctx.storage, ctx.run(ep_id, run_id), build, ctx.store.mutex, cluster_version, group)


@router.get(RUN_PATH + "/assignments", response_model=AssignmentsResponse)
def get_assignments(ctx: Ctx, ep_id: str = EP, run_id: str = RUN) -> dict:
    return assignments_summary(ctx.storage, load_view(ctx.storage, ctx.run(ep_id, run_id)))


def cluster_assignment(req: ClusterAssignRequest, ctx: Ctx, ep_id: str = EP, run_id: str = RUN, if_match: Optional[str] = IF_MATCH) -> dict:
    _check_cast(ctx, ep_id, req.cast_id)
    return _append(
        ctx,
        ep_id,
        run_id,
        lambda identity, track: {"op": "assign_cluster", "identity": identity(req.cluster_id), "cast_id": req.cast_id},
        (req, if_match),
    )


def track_assignment(req: TrackAssignRequest, ctx: Ctx, ep_id: str = EP, run_id: str = RUN, if_match: Optional[str] = IF_MATCH) -> dict:
    _check_cast(ctx, ep_id, req.cast_id)
    return _append(ctx, ep_id, run_id, lambda identity, track: {"op": "assign_track", "track": track(req.track_id), "cast_id": req.cast_id}, (req, if_match))


def face_exclusion(req: FaceExclusionRequest, ctx: Ctx, ep_id: str = EP, run_id: str = RUN, if_match: Optional[str] = IF_MATCH) -> dict:
    track_id, frame_idx = parse_face_id(req.face_id)
    return _append(
        ctx,
        ep_id,
        run_id,
        lambda identity, track: {"op": "exclude_face", "track": track(track_id), "frame_idx": frame_idx, "exclude": req.excluded},
        (req, if_match),
    )


for _method in (router.post, router.put):
    _method(RUN_PATH + "/assignments/cluster", response_model=AssignmentsResponse)(cluster_assignment)
    _method(RUN_PATH + "/assignments/track", response_model=AssignmentsResponse)(track_assignment)
    _method(RUN_PATH + "/assignments/face_exclusion", response_model=AssignmentsResponse)(face_exclusion)


@router.post(RUN_PATH + "/identities/merge", response_model=AssignmentsResponse)
def merge_identities(req: MergeRequest, ctx: Ctx, ep_id: str = EP, run_id: str = RUN, if_match: Optional[str] = IF_MATCH) -> dict:
    if req.target_identity_id == req.source_identity_id:
        raise HTTPException(422, "cannot merge an identity into itself")
    return _append(
        ctx,
        ep_id,
        run_id,
        lambda identity, track: {"op": "merge", "identity": identity(req.target_identity_id), "other": identity(req.source_identity_id)},
        (req, if_match),
    )


@router.post(RUN_PATH + "/tracks/{track_id}/move", response_model=AssignmentsResponse)
def move_track(
    req: MoveTrackRequest, ctx: Ctx, ep_id: str = EP, run_id: str = RUN, track_id: int = PathParam(ge=1, le=10**9), if_match: Optional[str] = IF_MATCH
) -> dict:
    return _append(
        ctx,
        ep_id,
        run_id,
        lambda identity, track: {"op": "move_track", "track": track(track_id), "identity": identity(req.to_identity_id)},
        (req, if_match),
    )


@router.post(RUN_PATH + "/identities/split", response_model=AssignmentsResponse)
def split_identity(req: SplitRequest, ctx: Ctx, ep_id: str = EP, run_id: str = RUN, if_match: Optional[str] = IF_MATCH) -> dict:
    return _append(ctx, ep_id, run_id, lambda identity, track: {"op": "split", "tracks": [track(t) for t in req.track_ids]}, (req, if_match))


@router.post(RUN_PATH + "/identities/{identity_id}/reject", response_model=AssignmentsResponse)
def reject_suggestion(
    req: RejectRequest, ctx: Ctx, ep_id: str = EP, run_id: str = RUN, identity_id: str = IDENTITY, if_match: Optional[str] = IF_MATCH
) -> dict:
    """ "Not X": the identity is never named ``cast_id`` automatically again, in this run or after any
    re-run (the rejection is anchored like every correction)."""
    _check_cast(ctx, ep_id, req.cast_id)
    return _append(
        ctx,
        ep_id,
        run_id,
        lambda identity, track: {"op": "reject", "identity": identity(identity_id), "cast_id": req.cast_id, "active": req.active},
        (req, if_match),
    )


@router.post(RUN_PATH + "/identities/{identity_id}/mark", response_model=AssignmentsResponse)
def mark_identity(req: MarkRequest, ctx: Ctx, ep_id: str = EP, run_id: str = RUN, identity_id: str = IDENTITY, if_match: Optional[str] = IF_MATCH) -> dict:
    """A guest (optionally named) or not a face: out of cast screen time (not-a-face out of all screen
    time), and its faces join the show's not-cast bank so later episodes recognise it. ``kind`` null
    clears the mark."""
    return _append(
        ctx,
        ep_id,
        run_id,
        lambda identity, track: {"op": "mark", "identity": identity(identity_id), "kind": req.kind, "label": req.label},
        (req, if_match),
    )


@router.get(RUN_PATH + "/corrections", response_model=CorrectionsList)
def list_corrections(ctx: Ctx, ep_id: str = EP, run_id: str = RUN) -> dict:
    """The run's corrections log, newest first, each with whether it is still in effect."""
    return corrections_list(ctx.storage, ctx.run(ep_id, run_id))


@router.post(RUN_PATH + "/corrections/undo", response_model=AssignmentsResponse)
def undo_last(req: UndoRequest, ctx: Ctx, ep_id: str = EP, run_id: str = RUN) -> dict:
    """Take back the newest correction still in effect, with the others made in the same step (a bulk
    action's ``group``); 409 when there is none. The log keeps both."""
    layout = ctx.run(ep_id, run_id)
    return _append(ctx, ep_id, run_id, lambda identity, track: undo_entries(ctx.storage, layout, req.seq))  # a step's corrections together


@router.post(RUN_PATH + "/voices/{voice_id}/assign", response_model=AssignmentsResponse)
def assign_voice(req: VoiceAssignRequest, ctx: Ctx, ep_id: str = EP, run_id: str = RUN, voice_id: str = VOICE) -> dict:
    """This voice is ``cast_id`` (null clears it): wins over the on-screen evidence, and follows the voice
    through re-runs (anchored by when it spoke)."""
    _check_cast(ctx, ep_id, req.cast_id)
    spans = voice_spans(load_view(ctx.storage, ctx.run(ep_id, run_id)), voice_id)
    return _append(ctx, ep_id, run_id, lambda identity, track: {"op": "assign_voice", "spans": spans, "cast_id": req.cast_id})
