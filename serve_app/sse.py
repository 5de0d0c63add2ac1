"""Server-sent events of a job's progress: one ``progress`` event per change, then ``done`` with the
final state. The stream always ends: a job whose actor dies is ended by the watchdog."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from .state import FINAL_STATES, StateStore

SSE_POLL_S = 0.5


async def job_events(store: StateStore, job_id: str) -> AsyncIterator[str]:
    last = None
    while True:
        job = store.get_job(job_id)
        if job is None:
            return
        payload = json.dumps({"job_id": job_id, "state": job["state"], "progress": job["progress"], "error": job["error"]})
        if payload != last:
            yield f"event: progress\ndata: {payload}\n\n"
            last = payload
        if job["state"] in FINAL_STATES:
            yield f"event: done\ndata: {payload}\n\n"
            return
        await asyncio.sleep(SSE_POLL_S)
