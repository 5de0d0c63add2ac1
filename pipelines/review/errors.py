"""Errors of the review layer; the API maps them to HTTP statuses, the CLI to exit codes."""

from __future__ import annotations


class NotFound(LookupError):
    """An episode, run, identity, track, face or cast member that does not exist (HTTP 404)."""


class Conflict(RuntimeError):
    """A request that cannot be carried out in the current state (HTTP 409), e.g. a stage not run yet."""
