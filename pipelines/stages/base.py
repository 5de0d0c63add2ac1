"""What every stage shares: the run context, fingerprints, progress reporting and cancellation."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from typing import Any, Optional, Protocol

from ..artifacts import RunLayout, dumps
from ..config import PipelineConfig
from ..schemas import StageName
from ..storage import Storage

# Bump a stage's version when its algorithm changes, so finished runs are recomputed.
STAGE_VERSIONS = {
    StageName.detect_track: 1,
    StageName.faces_embed: 1,
    StageName.cluster: 1,
    StageName.screentime: 1,
}


class ProgressSink(Protocol):
    def __call__(self, stage: StageName, done: float, total: float, **info: Any) -> None: ...


def no_progress(stage: StageName, done: float, total: float, **info: Any) -> None:
    return None


class Canceled(RuntimeError):
    """The run was canceled; finished artifacts stay, the stage in flight writes nothing."""


class MissingInputs(RuntimeError):
    """A stage's inputs do not exist yet; the message names them."""

    def __init__(self, stage: StageName, missing: list[str]):
        self.stage = stage
        self.missing = missing
        super().__init__(f"{stage.value} needs {', '.join(missing)}; run the earlier stages first")


@dataclass
class RunContext:
    storage: Storage
    layout: RunLayout
    config: PipelineConfig
    progress: ProgressSink = no_progress
    cancel_event: Optional[threading.Event] = None
    cast_names: dict[str, str] = field(default_factory=dict)

    def check_canceled(self) -> None:
        if self.cancel_event is not None and self.cancel_event.is_set():
            raise Canceled("canceled")


def fingerprint(*parts: Any) -> str:
    return hashlib.sha256(dumps(parts).encode()).hexdigest()[:20]
