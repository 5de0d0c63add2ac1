"""Errors of the review layer; the API maps them to HTTP statuses, the CLI to exit codes."""

from __future__ import annotations


class NotFound(LookupError):
    """An episode, run, identity, track, face or cast member that does not exist (HTTP 404)."""


class Conflict(RuntimeError):
    """A request that cannot be carried out in the current state (HTTP 409), e.g. a stage not run yet."""


class StaleClustering(Conflict):
    """A correction made against identity or track ids from before the run was re-clustered (or
    re-tracked): the ids may now name other people, so it is refused (HTTP 409) with the current version."""

    def __init__(self, given: str, current: str):
        super().__init__(
            f"this correction was made against clustering version {given}, but the run was re-clustered since "
            f"(now {current}): its identity and track ids may name other people; reload and try again"
        )
        self.current = current
