"""API state in SQLite: episodes and the job registry (shows and cast live in the data dir). One file on the head node, shared by
the API replicas and the job actors pinned there (WAL mode; every write is one short transaction), so it
survives restarts."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional

from pipelines.schemas import StageState, utc_now

SCHEMA = """
CREATE TABLE IF NOT EXISTS episodes (
    ep_id TEXT PRIMARY KEY, show_slug TEXT NOT NULL, season_number INTEGER NOT NULL,
    episode_number INTEGER NOT NULL, title TEXT, air_date TEXT, video_key TEXT,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY, ep_id TEXT NOT NULL, run_id TEXT NOT NULL, job_type TEXT NOT NULL,
    state TEXT NOT NULL, requested TEXT NOT NULL, progress TEXT, result TEXT, error TEXT,
    actor_name TEXT, created_at TEXT NOT NULL, started_at TEXT, finished_at TEXT);
CREATE INDEX IF NOT EXISTS jobs_ep ON jobs (ep_id, created_at);
CREATE TABLE IF NOT EXISTS forgotten_episodes (ep_id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS shows (show_id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cast_members (
    cast_id TEXT PRIMARY KEY, show_id TEXT NOT NULL REFERENCES shows(show_id), name TEXT NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
"""


def _enable_wal(conn: sqlite3.Connection, attempts: int = 100) -> None:
    """WAL mode (persistent in the file). Switching it needs a moment alone with the file, and SQLite
    answers "locked" at once instead of waiting when processes open a new file together: retry."""
    for attempt in range(attempts):
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.02)


FINAL_STATES = {StageState.succeeded.value, StageState.failed.value, StageState.canceled.value}


class StateStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._conn().executescript(SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA busy_timeout=30000")
            _enable_wal(conn)
            self._local.conn = conn
        return conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    @contextmanager
    def mutex(self) -> Iterator[None]:
        """A cross-process critical section (SQLite's write lock), for read-modify-write of files."""
        with self._tx():
            yield

    # --- shows + cast (before they moved to the data dir) ---------------------------------------

    def legacy_roster(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Shows and cast members an older version kept here, for a one-time move to the data dir."""
        conn = self._conn()
        shows = [dict(r) for r in conn.execute("SELECT * FROM shows ORDER BY show_id")]
        cast = [dict(r) for r in conn.execute("SELECT * FROM cast_members ORDER BY cast_id")]
        return shows, cast

    # --- episodes ---------------------------------------------------------------------------------

    def create_episode(self, ep_id: str, show: str, season: int, episode: int, title: str | None, air_date: str | None) -> bool:
        now = utc_now()
        with self._tx() as db:
            cur = db.execute("INSERT OR IGNORE INTO episodes VALUES (?,?,?,?,?,?,NULL,?,?)", (ep_id, show, season, episode, title, air_date, now, now))
            db.execute("DELETE FROM forgotten_episodes WHERE ep_id=?", (ep_id,))
            return cur.rowcount == 1

    def adopt_episodes(self, ep_ids: list[str]) -> int:
        """Register episodes found in the data dir (run by the CLI or a catalog), except those deleted
        through the API with their artifacts kept."""
        from pipelines.ids import parse_ep_id

        now, added = utc_now(), 0
        with self._tx() as db:
            forgotten = {r[0] for r in db.execute("SELECT ep_id FROM forgotten_episodes")}
            for ep_id in ep_ids:
                if ep_id in forgotten:
                    continue
                key = parse_ep_id(ep_id)
                added += db.execute(
                    "INSERT OR IGNORE INTO episodes VALUES (?,?,?,?,NULL,NULL,NULL,?,?)", (ep_id, key.show, key.season, key.episode, now, now)
                ).rowcount
        return added

    def forgotten_episodes(self) -> set[str]:
        return {r[0] for r in self._conn().execute("SELECT ep_id FROM forgotten_episodes")}

    def get_episode(self, ep_id: str) -> Optional[dict[str, Any]]:
        row = self._conn().execute("SELECT * FROM episodes WHERE ep_id=?", (ep_id,)).fetchone()
        return dict(row) if row else None

    def list_episodes(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._conn().execute("SELECT * FROM episodes ORDER BY updated_at DESC, ep_id")]

    def update_episode(self, ep_id: str, **fields: Any) -> Optional[dict[str, Any]]:
        allowed = {k: v for k, v in fields.items() if k in ("title", "air_date", "video_key")}
        if allowed:
            sets = ", ".join(f"{k}=?" for k in allowed)
            with self._tx() as db:
                db.execute(f"UPDATE episodes SET {sets}, updated_at=? WHERE ep_id=?", (*allowed.values(), utc_now(), ep_id))
        return self.get_episode(ep_id)

    def delete_episode(self, ep_id: str, artifacts_kept: bool = False) -> bool:
        """Delete the record; with its artifacts kept, also remember not to adopt it again from them."""
        with self._tx() as db:
            if artifacts_kept:
                db.execute("INSERT OR IGNORE INTO forgotten_episodes VALUES (?)", (ep_id,))
            return db.execute("DELETE FROM episodes WHERE ep_id=?", (ep_id,)).rowcount == 1

    # --- jobs -------------------------------------------------------------------------------------

    def create_job_if_idle(
        self, job_id: str, ep_id: str, run_id: str, job_type: str, requested: dict, actor_name: str
    ) -> tuple[Optional[dict[str, Any]], Optional[dict[str, Any]]]:
        """(the new job, None), or (None, the job already in flight on this run): one atomic step, so two
        concurrent requests can never both start a job on the same run."""
        finals = ",".join("?" * len(FINAL_STATES))
        with self._tx() as db:
            busy = db.execute(
                f"SELECT * FROM jobs WHERE ep_id=? AND run_id=? AND state NOT IN ({finals}) ORDER BY created_at LIMIT 1",
                (ep_id, run_id, *FINAL_STATES),
            ).fetchone()
            if busy is not None:
                return None, _job(busy)
            db.execute(
                "INSERT INTO jobs (job_id, ep_id, run_id, job_type, state, requested, actor_name, created_at) VALUES (?,?,?,?,?,?,?,?)",
                (job_id, ep_id, run_id, job_type, StageState.queued.value, json.dumps(requested, allow_nan=False), actor_name, utc_now()),
            )
        return self.get_job(job_id), None

    def update_job(self, job_id: str, **fields: Any) -> None:
        """Set fields; a job already in a final state keeps it (a late progress write cannot revive it)."""
        values = {k: (json.dumps(v) if k in ("progress", "result") and v is not None else v) for k, v in fields.items()}
        if values.get("state") in ("running",):
            values.setdefault("started_at", utc_now())
        if values.get("state") in FINAL_STATES:
            values.setdefault("finished_at", utc_now())
        sets = ", ".join(f"{k}=?" for k in values)
        finals = ",".join("?" * len(FINAL_STATES))
        with self._tx() as db:
            db.execute(f"UPDATE jobs SET {sets} WHERE job_id=? AND state NOT IN ({finals})", (*values.values(), job_id, *FINAL_STATES))

    def get_job(self, job_id: str) -> Optional[dict[str, Any]]:
        row = self._conn().execute("SELECT * FROM jobs WHERE job_id=?", (job_id,)).fetchone()
        return _job(row) if row else None

    def _job_filter(self, ep_id: str | None, job_type: str | None, state: str | None) -> tuple[str, list[Any]]:
        sql, args = " WHERE 1=1", []
        for col, val in (("ep_id", ep_id), ("job_type", job_type), ("state", state)):
            if val is not None:
                sql += f" AND {col}=?"
                args.append(val)
        return sql, args

    def list_jobs(
        self, ep_id: str | None = None, job_type: str | None = None, state: str | None = None, limit: int | None = 100, offset: int = 0
    ) -> list[dict[str, Any]]:
        """Newest first; ``limit=None`` for all."""
        where, args = self._job_filter(ep_id, job_type, state)
        page = " LIMIT ? OFFSET ?" if limit is not None else ""
        args += [limit, offset] if limit is not None else []
        return [_job(r) for r in self._conn().execute("SELECT * FROM jobs" + where + " ORDER BY created_at DESC, job_id" + page, args)]

    def count_jobs(self, ep_id: str | None = None, job_type: str | None = None, state: str | None = None) -> int:
        where, args = self._job_filter(ep_id, job_type, state)
        return int(self._conn().execute("SELECT COUNT(*) FROM jobs" + where, args).fetchone()[0])

    def active_jobs(self, ep_id: str, run_id: str | None = None) -> list[dict[str, Any]]:
        finals = ",".join("?" * len(FINAL_STATES))
        sql, args = f"SELECT * FROM jobs WHERE ep_id=? AND state NOT IN ({finals})", [ep_id, *FINAL_STATES]
        if run_id is not None:
            sql += " AND run_id=?"
            args.append(run_id)
        return [_job(r) for r in self._conn().execute(sql + " ORDER BY created_at DESC", args)]


def _job(row: sqlite3.Row) -> dict[str, Any]:
    out = dict(row)
    for key in ("requested", "progress", "result"):
        out[key] = json.loads(out[key]) if out[key] else None
    return out
