"""What every stage shares: the run context, the stage protocol, fingerprints, progress and cancellation.

Every stage is a :class:`StageSpec`: ``run(ctx)`` reads its inputs through ``ctx`` (storage, layout,
config, the video's metadata) and returns counts; ``fingerprint_inputs(ctx)`` names what, beyond its
settings and the upstream fingerprint, changes its result. The runner treats all stages alike.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Optional, Protocol

from ..artifacts import dumps
from ..layout import RunLayout
from ..registry import Artifact
from ..schemas import StageName, VideoMeta
from ..stage_settings import PipelineConfig
from ..storage import Storage


class ProgressSink(Protocol):
    def __call__(self, stage: StageName, done: float, total: float, **info: Any) -> None: ...


def no_progress(stage: StageName, done: float, total: float, **info: Any) -> None:
    return None


class Canceled(RuntimeError):
    """The run was canceled; finished artifacts stay, the stage in flight writes nothing."""


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and everything it was raised from or during (``__cause__``, ``__context__``, and the
    ``cause`` Ray wraps a task's error in), each once."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        e = stack.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        stack += [c for c in (getattr(e, "cause", None), e.__cause__, e.__context__) if isinstance(c, BaseException)]


class MissingInputs(RuntimeError):
    """A stage's inputs do not exist yet; the message names them."""

    def __init__(self, stage: StageName, missing: list[str]):
        self.stage = stage
        self.missing = missing
        super().__init__(f"{stage.value} needs {', '.join(missing)}; run the earlier stages first")


@dataclass
class RunContext:
    """Everything a stage reads: where the run lives, its settings, the video, progress and cancel."""

    storage: Storage
    layout: RunLayout
    config: PipelineConfig
    video: Optional[VideoMeta] = None
    video_source: Optional[str] = None  # the path or s3:// URI the video was given as (detectors on other nodes read it)
    progress: ProgressSink = no_progress
    cancel_event: Optional[threading.Event] = None
    cast_names: dict[str, str] = field(default_factory=dict)

    def check_canceled(self) -> None:
        if self.cancel_event is not None and self.cancel_event.is_set():
            raise Canceled("canceled")

    def require_video(self) -> VideoMeta:
        if self.video is None:
            raise MissingInputs(StageName.detect_track, ["a video (path or s3:// URI)"])
        return self.video


@dataclass(frozen=True)
class StageSpec:
    """One pipeline stage, as the runner sees it.

    ``version``: bump it when the algorithm changes, so finished runs are recomputed.
    ``outputs``: the artifacts (:mod:`pipelines.registry`) that must exist for the stage to be reused.
    ``execution_only``: settings that change how fast, not what (kept out of the fingerprint).
    """

    name: StageName
    version: int
    outputs: tuple[Artifact, ...]
    run: Callable[[RunContext], dict[str, float]]
    fingerprint_inputs: Callable[[RunContext], list[Any]] = lambda ctx: []
    execution_only: frozenset[str] = frozenset()
    independent: bool = False
    """Its result does not depend on the stage before it (audio): its fingerprint leaves the upstream
    out, and a run that has never had it passes over it."""

    def settings(self, config: PipelineConfig) -> dict[str, Any]:
        section = getattr(config, self.name.value).model_dump()
        return {k: v for k, v in section.items() if k not in self.execution_only}

    def fingerprint(self, ctx: RunContext, upstream: str | None) -> str:
        return fingerprint(self.name.value, self.version, self.settings(ctx.config), None if self.independent else upstream, self.fingerprint_inputs(ctx))

    def chain(self, upstream: str | None, own: str) -> str:
        """What the next stage chains to: this stage's fingerprint, with the upstream's for an independent stage."""
        return fingerprint(upstream, own) if self.independent else own


def model_settings(config: PipelineConfig) -> dict[str, Any]:
    """Model settings that can change results (the device cannot: same graphs, same numbers)."""
    return {k: v for k, v in config.models.model_dump().items() if k != "device"}


def fingerprint(*parts: Any) -> str:
    return hashlib.sha256(dumps(parts).encode()).hexdigest()[:20]
