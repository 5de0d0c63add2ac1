"""Shows and their cast members, kept in the data dir (local or S3) so that the API, the CLI and
catalog runs share one roster.

Each show and each cast member is one small JSON file written atomically, so concurrent writers
never lose each other's members (there is no read-modify-write of a shared list).
"""

from __future__ import annotations

from typing import Optional

from pydantic import ValidationError

from ..artifacts import read_model, write_model
from ..layout import cast_key, cast_prefix, show_key, shows_prefix
from ..schemas import CastMember, ShowRecord, utc_now
from ..storage import Storage
from .errors import CastIdTaken


def get_show(storage: Storage, show_id: str) -> Optional[ShowRecord]:
    key = show_key(show_id)
    return read_model(storage, key, ShowRecord) if storage.exists(key) else None


def list_shows(storage: Storage) -> list[ShowRecord]:
    shows = []
    for name in storage.children(shows_prefix()):
        try:
            show = get_show(storage, name)
        except (ValueError, ValidationError):
            continue
        if show is not None:
            shows.append(show)
    return shows


def create_show(storage: Storage, show_id: str, name: Optional[str] = None) -> bool:
    """Create the show unless it exists; True when created."""
    if get_show(storage, show_id) is not None:
        return False
    write_model(storage, show_key(show_id), ShowRecord(show_id=show_id, name=name or show_id))
    return True


def list_cast(storage: Storage, show_id: str) -> list[CastMember]:
    members = []
    for name in storage.children(cast_prefix(show_id)):
        if name.endswith(".json"):
            try:
                members.append(read_model(storage, f"{cast_prefix(show_id)}/{name}", CastMember))
            except (ValueError, ValidationError):
                continue
    return sorted(members, key=lambda m: m.cast_id)


def find_cast(storage: Storage, cast_id: str) -> Optional[CastMember]:
    """The cast member with this id in any show."""
    for show in list_shows(storage):
        key = cast_key(show.show_id, cast_id)
        if storage.exists(key):
            return read_model(storage, key, CastMember)
    return None


def get_cast(storage: Storage, show_id: str, cast_id: str) -> Optional[CastMember]:
    key = cast_key(show_id, cast_id)
    return read_model(storage, key, CastMember) if storage.exists(key) else None


def create_cast(storage: Storage, show_id: str, cast_id: str, name: Optional[str] = None) -> bool:
    """Create the cast member unless it exists (CastIdTaken when another show uses the id)."""
    existing = find_cast(storage, cast_id)
    if existing is not None:
        if existing.show_id != show_id:
            raise CastIdTaken(f"cast id {cast_id} belongs to show {existing.show_id}")
        return False
    write_model(storage, cast_key(show_id, cast_id), CastMember(cast_id=cast_id, show_id=show_id, name=name or cast_id))
    return True


def rename_cast(storage: Storage, member: CastMember, name: str) -> CastMember:
    updated = member.model_copy(update={"name": name, "updated_at": utc_now()})
    write_model(storage, cast_key(member.show_id, member.cast_id), updated)
    return updated


def delete_cast(storage: Storage, show_id: str, cast_id: str) -> bool:
    return storage.delete_prefix(cast_key(show_id, cast_id)) > 0


def cast_names(storage: Storage, show_id: str) -> dict[str, str]:
    return {m.cast_id: m.name for m in list_cast(storage, show_id)}
