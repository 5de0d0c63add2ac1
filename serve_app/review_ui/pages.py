"""The review pages, served by the same app as the API under ``/review/``.

Each page is a small HTML shell rendered here (title, navigation, where the API is) plus our own
JavaScript that reads and writes through the public API, so the page can do nothing a user of the API
could not. Every link is relative (a Serve route prefix works) and every asset URL carries its content
hash, so browsers cache assets for good and never run a stale one.
"""

from __future__ import annotations

import hashlib
import html
from functools import cache
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from pipelines.ids import parse_ep_id

from ..caching import cached_bytes
from ..context import EP, RUN_Q, SHOW

router = APIRouter(tags=["review"], include_in_schema=False)
STATIC = Path(__file__).parent / "static"
MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
PAGE_SCRIPTS = {"episodes": "episodes.js", "episode": "episode.js", "screentime": "screentime.js", "show": "show.js"}


@cache
def _asset(name: str) -> tuple[bytes, str]:
    path = STATIC / name
    if path.parent != STATIC or not path.is_file():
        raise HTTPException(404, f"no asset {name}")
    data = path.read_bytes()
    return data, hashlib.sha1(data).hexdigest()[:12]


def _shell(page: str, title: str, depth: int, **data: str) -> HTMLResponse:
    """The page: ``depth`` is how many folders below the API root its URL is (links stay relative)."""
    root = "../" * depth
    attrs = " ".join(f'data-{k}="{html.escape(v)}"' for k, v in {"page": page, "root": root, **data}.items())

    def asset(name: str) -> str:
        return f"{root}review/static/{name}?v={_asset(name)[1]}"

    show = data.get("show", "")
    nav_show = f'<a href="{root}review/shows/{html.escape(show)}">Show: {html.escape(show)}</a>' if show else ""
    body = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} · Screenalytics</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{asset("review.css")}">
</head>
<body {attrs}>
<a class="skip" href="#main">Skip to content</a>
<header class="top">
  <nav aria-label="Main"><a href="{root}review/" class="brand">Screenalytics</a> <a href="{root}review/">Episodes</a> {nav_show}</nav>
  <button type="button" id="help-button" aria-haspopup="dialog" title="Keyboard shortcuts (?)">?</button>
</header>
<main id="main" tabindex="-1"><h1>{html.escape(title)}</h1><p class="muted" id="loading">Loading…</p></main>
<div id="toast" role="status" aria-live="polite"></div>
<script src="{asset("common.js")}"></script>
<script src="{asset(PAGE_SCRIPTS[page])}"></script>
</body>
</html>
"""
    return HTMLResponse(body, headers={"Cache-Control": "no-cache"})


@router.get("/review", response_class=RedirectResponse)
def review_root() -> RedirectResponse:
    return RedirectResponse("review/", status_code=307)


@router.get("/review/", response_class=HTMLResponse)
def episodes_page() -> HTMLResponse:
    return _shell("episodes", "Episodes", 1)


@router.get("/review/episodes/{ep_id}", response_class=HTMLResponse)
def episode_page(ep_id: str = EP, run_id: str = RUN_Q) -> HTMLResponse:
    return _shell("episode", f"Review {ep_id}", 2, ep=ep_id, run=run_id, show=parse_ep_id(ep_id).show)


@router.get("/review/episodes/{ep_id}/screentime", response_class=HTMLResponse)
def screentime_page(ep_id: str = EP, run_id: str = RUN_Q) -> HTMLResponse:
    return _shell("screentime", f"Screen time {ep_id}", 3, ep=ep_id, run=run_id, show=parse_ep_id(ep_id).show)


@router.get("/review/shows/{show_id}", response_class=HTMLResponse)
def show_page(show_id: str = SHOW, run_id: str = RUN_Q) -> HTMLResponse:
    return _shell("show", f"Show {show_id}", 2, show=show_id, run=run_id)


@router.get("/review/static/{name}", response_class=Response)
def static_asset(request: Request, name: str = PathParam(pattern=r"^[a-z_]+\.(js|css|png)$")) -> Response:
    data, version = _asset(name)
    return cached_bytes(request, data, MEDIA_TYPES[Path(name).suffix], immutable=request.query_params.get("v") == version)
