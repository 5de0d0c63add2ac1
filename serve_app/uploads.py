"""Video uploads streamed to disk: the multipart body is parsed as it arrives, the file part goes to a
temporary file in chunks, and the size limit is enforced while reading, so memory stays flat whatever
the upload's size and an oversized upload stops at the limit."""

from __future__ import annotations

import ctypes
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from fastapi import HTTPException
from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header


@dataclass
class ReceivedFile:
    path: Path
    filename: str
    size: int


class _FilePart:
    """Callbacks of the streaming multipart parser: headers of each part, then the ``file`` part's bytes."""

    def __init__(self, sink, field: str):
        self.sink, self.field = sink, field
        self.header_field = b""
        self.header_value = b""
        self.headers: dict[bytes, bytes] = {}
        self.writing = False
        self.filename: Optional[str] = None
        self.found = False
        self.size = 0
        self.ended = False  # the closing boundary arrived: the body is whole

    def callbacks(self) -> dict:
        return {
            "on_end": self.on_end,
            "on_part_begin": self.on_part_begin,
            "on_header_field": lambda data, start, end: self._append("header_field", data[start:end]),
            "on_header_value": lambda data, start, end: self._append("header_value", data[start:end]),
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
        }

    def _append(self, name: str, data: bytes) -> None:
        setattr(self, name, getattr(self, name) + data)

    def on_part_begin(self) -> None:
        self.headers, self.writing = {}, False

    def on_end(self) -> None:
        self.ended = True

    def on_header_end(self) -> None:
        self.headers[self.header_field.lower()] = self.header_value
        self.header_field = self.header_value = b""

    def on_headers_finished(self) -> None:
        _, params = parse_options_header(self.headers.get(b"content-disposition", b""))
        if params.get(b"name", b"").decode(errors="replace") == self.field and not self.found:
            self.writing = self.found = True
            self.filename = params.get(b"filename", b"upload").decode(errors="replace")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.writing:
            self.sink.write(data[start:end])
            self.size += end - start


def _release_memory() -> None:
    """Give freed heap back to the OS (glibc keeps it otherwise, and a replica would only grow)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


def _boundary(content_type: str, refusal: str) -> bytes:
    """The multipart boundary of ``content_type``; 415 with ``refusal`` when it is not multipart."""
    kind, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise HTTPException(415, refusal)
    return boundary


async def _feed(parser: MultipartParser, part: _FilePart, body: AsyncIterator[bytes], limit: int) -> None:
    """Stream ``body`` into ``parser``; 413 as soon as more than ``limit`` bytes arrived, 400 for a body
    that is not well-formed multipart (a boundary other than the header's, an oversized part header, a
    body cut off before its closing boundary), so a partial file is never taken for a whole one."""
    received = 0
    try:
        async for chunk in body:
            received += len(chunk)
            if received > limit:
                raise HTTPException(413, f"upload larger than {limit} bytes")
            parser.write(chunk)
        parser.finalize()
    except FormParserError as exc:
        raise HTTPException(400, f"malformed multipart body: {exc}") from None
    if not part.ended:
        raise HTTPException(400, "malformed multipart body: it ended before its closing boundary")


async def receive_file(content_type: str, body: AsyncIterator[bytes], content_length: Optional[int], limit: int, field: str = "file") -> ReceivedFile:
    """Stream the multipart ``field`` of a request body to a temporary file (the caller deletes it)."""
    if content_length is not None and content_length > limit:
        raise HTTPException(413, f"upload larger than {limit} bytes")
    boundary = _boundary(content_type, "upload the video as multipart/form-data with a 'file' part")
    fd, tmp = tempfile.mkstemp(suffix=".upload")
    try:
        with os.fdopen(fd, "wb") as sink:
            part = _FilePart(sink, field)
            await _feed(MultipartParser(boundary, part.callbacks()), part, body, limit)  # type: ignore[arg-type]  # the callbacks TypedDict, built as a dict
        if not part.found:
            raise HTTPException(422, f"the multipart body has no '{field}' part")
        return ReceivedFile(Path(tmp), part.filename or "upload", part.size)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        _release_memory()


class _Parts(_FilePart):
    """Collects every part named ``field`` in memory (small files: reference photos)."""

    def __init__(self, field: str):
        super().__init__(None, field)
        self.files: list[tuple[str, bytearray]] = []

    def on_headers_finished(self) -> None:
        _, params = parse_options_header(self.headers.get(b"content-disposition", b""))
        self.writing = params.get(b"name", b"").decode(errors="replace") == self.field
        if self.writing:
            self.found = True
            self.files.append((params.get(b"filename", b"photo").decode(errors="replace"), bytearray()))

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.writing:
            self.files[-1][1].extend(data[start:end])


async def receive_small_files(content_type: str, body: AsyncIterator[bytes], limit: int, field: str = "files", max_files: int = 50) -> list[tuple[str, bytes]]:
    """Every multipart part named ``field`` as (filename, bytes); 413 past ``limit`` bytes in all."""
    boundary = _boundary(content_type, f"send the photos as multipart/form-data, one '{field}' part each")
    part = _Parts(field)
    await _feed(MultipartParser(boundary, part.callbacks()), part, body, limit)  # type: ignore[arg-type]
    if not part.files:
        raise HTTPException(422, f"the multipart body has no '{field}' part")
    if len(part.files) > max_files:
        raise HTTPException(422, f"at most {max_files} photos per request")
    return [(name[-200:], bytes(data)) for name, data in part.files]
