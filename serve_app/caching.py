"""Responses the browser may cache: an ETag on every body (a revalidation costs a 304, not the bytes),
and ``immutable`` for a year when the URL carries a version that changes with the content."""

from __future__ import annotations

import hashlib

from fastapi import Request
from fastapi.responses import Response

YEAR_S = 365 * 24 * 3600


def cached_bytes(request: Request, data: bytes, media_type: str, immutable: bool) -> Response:
    etag = f'"{hashlib.sha1(data).hexdigest()[:20]}"'
    headers = {"ETag": etag, "Cache-Control": f"public, max-age={YEAR_S}, immutable" if immutable else "no-cache"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(data, media_type=media_type, headers=headers)
