"""Route handlers without Ray Serve: the FastAPI app from ``build_app`` under a TestClient, over a real
SQLite state store and a local data dir. The guard (token, CSRF, hosts) and input bounds are checked here;
what needs Ray (jobs running) is in test_api.py."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from serve_app.api import build_app
from serve_app.settings import ApiSettings, SettingsError
from serve_app.state import StateStore

TOKEN = "s3cret-token-for-tests-0123456789"


def _client(tmp_path, **settings) -> TestClient:
    base = {"data_uri": str(tmp_path / "data"), "db_path": str(tmp_path / "state.sqlite3"), "allowed_hosts": ("testserver", "127.0.0.1")}
    return TestClient(build_app(ApiSettings(**{**base, **settings})), base_url="http://testserver")


@pytest.fixture
def client(tmp_path):
    return _client(tmp_path)


@pytest.fixture
def secured(tmp_path):
    return _client(tmp_path, api_token=TOKEN)


def _raw(client: TestClient, path: str, body: str, content_type: str = "application/json"):
    return client.post(path, content=body.encode(), headers={"content-type": content_type})


def test_shows_and_cast_crud_without_serve(client):
    assert client.post("/shows", json={"show_id": "rhobh", "name": "RHOBH"}).status_code == 201
    assert client.post("/shows/rhobh/cast", json={"cast_id": "kyle", "name": "Kyle"}).status_code == 201
    assert client.get("/shows/rhobh/cast").json()["cast"][0]["name"] == "Kyle"
    assert client.get("/shows/rhobh/cast/nobody").status_code == 404
    assert client.delete("/shows/rhobh/cast/kyle").json()["deleted"] is True


def test_mutations_need_the_token_when_one_is_set(secured):
    ep = {"show_slug_or_id": "rt", "season_number": 1, "episode_number": 2}
    r = secured.post("/episodes", json=ep)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer" and "token" in r.json()["detail"]
    assert secured.post("/episodes", json=ep, headers={"Authorization": "Bearer wrong-token-wrong-token"}).status_code == 401
    assert secured.post("/episodes", json=ep, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 201
    assert secured.delete("/episodes/rt-s01e02?delete_artifacts=true").status_code == 401
    assert secured.get("/episodes").status_code == 200  # reads stay open
    assert secured.get("/health").json()["auth"] is True


def test_review_page_session_cookie_needs_its_csrf_token(secured):
    assert secured.post("/auth/session", json={"token": "nope"}).status_code == 401
    r = secured.post("/auth/session", json={"token": TOKEN})
    assert r.status_code == 200
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    csrf = r.json()["csrf_token"]
    show = {"show_id": "rt", "name": "RT"}
    assert secured.post("/shows", json=show).status_code == 403  # cookie alone: no
    assert secured.post("/shows", json=show, headers={"X-CSRF-Token": "x" * 64}).status_code == 403
    assert secured.post("/shows", json=show, headers={"X-CSRF-Token": csrf}).status_code == 201
    assert secured.get("/auth/session").json()["signed_in"] is True


def test_cross_origin_and_form_posts_are_refused(client):
    client.post("/shows", json={"show_id": "rt", "name": "RT"})
    evil = {"Origin": "https://evil.example"}
    assert client.post("/shows", json={"show_id": "x", "name": "X"}, headers=evil).status_code == 403
    assert client.post("/jobs/job-000000000000/cancel", content=b"{}", headers={**evil, "content-type": "text/plain"}).status_code == 403
    assert _raw(client, "/shows", '{"show_id": "y", "name": "Y"}', "text/plain").status_code == 415
    assert client.post("/episodes/rt-s01e01/video", files={"file": ("a.mp4", b"x")}, headers=evil).status_code == 403
    assert client.post("/shows", json={"show_id": "z", "name": "Z"}, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    same = {"Origin": "http://testserver"}
    assert client.post("/shows", json={"show_id": "w", "name": "W"}, headers=same).status_code == 201


def test_unknown_hosts_are_refused(client):
    assert client.get("/health", headers={"Host": "rebind.attacker.example"}).status_code == 400
    assert client.get("/health", headers={"Host": "127.0.0.1:8000"}).status_code == 200


def test_settings_refuse_a_required_token_that_is_missing(tmp_path):
    with pytest.raises(SettingsError, match="no API token"):
        ApiSettings.from_env(str(tmp_path), {"SCREENALYTICS_REQUIRE_TOKEN": "1"})
    (tmp_path / "token").write_text(TOKEN + "\n")
    settings = ApiSettings.from_env(str(tmp_path), {"SCREENALYTICS_REQUIRE_TOKEN": "1", "SCREENALYTICS_API_TOKEN_FILE": str(tmp_path / "token")})
    assert settings.api_token == TOKEN and TOKEN not in repr(settings)
    with pytest.raises(SettingsError, match="16 characters"):
        ApiSettings.from_env(str(tmp_path), {"SCREENALYTICS_API_TOKEN": "short"})


def test_settings_come_from_their_variables_and_bad_values_are_named(tmp_path):
    env = {
        "SCREENALYTICS_ALLOWED_HOSTS": "api.example.org, 10.0.0.5",
        "SCREENALYTICS_MAX_UPLOAD_BYTES": "1048576",
        "SCREENALYTICS_S3_BUCKET": "",  # empty: unset
        "S3_ENDPOINT_URL": "http://127.0.0.1:9000",
    }
    settings = ApiSettings.from_env(str(tmp_path), env)
    assert settings.allowed_hosts == ("api.example.org", "10.0.0.5") and settings.max_upload_bytes == 1048576
    assert settings.s3_bucket is None and settings.s3_endpoint == "http://127.0.0.1:9000"
    assert settings.db_path == f"{tmp_path.resolve()}/state.sqlite3" and settings.allowed_origins == ()
    with pytest.raises(SettingsError, match="SCREENALYTICS_MAX_UPLOAD_BYTES"):
        ApiSettings.from_env(str(tmp_path), {"SCREENALYTICS_MAX_UPLOAD_BYTES": "20GB"})


def test_non_finite_numbers_are_422_naming_the_field_and_start_nothing(client, tmp_path):
    r = _raw(client, "/episodes", '{"show_slug_or_id": "rt", "season_number": NaN, "episode_number": 1}')
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "season_number"
    client.post("/episodes", json={"show_slug_or_id": "rt", "season_number": 1, "episode_number": 1})
    r = _raw(client, "/episodes/rt-s01e01/video_clip", '{"start_s": NaN, "end_s": 3}')
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "start_s"
    r = _raw(client, "/jobs/detect_track_async", '{"ep_id": "rt-s01e01", "overrides": {"detect_track.track_max_gap_s": Infinity}}')
    assert r.status_code == 422 and "track_max_gap_s" in json.dumps(r.json())
    r = client.post("/jobs/detect_track_async", json={"ep_id": "rt-s01e01", "overrides": {"detect_track.detect_fps": 1e308}})
    assert r.status_code == 422 and "detect_fps" in r.json()["detail"]
    assert StateStore(tmp_path / "state.sqlite3").count_jobs() == 0


def test_huge_inputs_are_refused_and_never_echoed_whole(client, tmp_path):
    client.post("/episodes", json={"show_slug_or_id": "rt", "season_number": 1, "episode_number": 1})
    huge = "x" * 5_000_000
    r = client.post("/jobs/detect_track_async", json={"ep_id": "rt-s01e01", "overrides": {"detect_track.detect_fps": huge}})
    assert r.status_code == 422 and len(r.content) < 5000
    r = client.post("/jobs/detect_track_async", json={"ep_id": "rt-s01e01", "profile": huge})
    assert r.status_code == 422 and len(r.content) < 5000
    assert StateStore(tmp_path / "state.sqlite3").count_jobs() == 0


def test_ids_with_a_trailing_newline_are_refused(client):
    assert client.post("/jobs/detect_track_async", json={"ep_id": "rt-s01e02\n"}).status_code == 422
    assert client.get("/episodes/rt-s01e02%0A").status_code == 422


def test_job_list_is_paged(client, tmp_path):
    store = StateStore(tmp_path / "state.sqlite3")
    for k in range(5):
        store.create_job_if_idle(f"job-{k:012x}", "rt-s01e01", f"run{k}", "cluster", {}, f"job:cluster:rt-s01e01:{k}")
    page = client.get("/jobs", params={"limit": 2}).json()
    assert len(page["jobs"]) == 2 and page["total"] == 5 and page["next_offset"] == 2
    last = client.get("/jobs", params={"limit": 2, "offset": 4}).json()
    assert len(last["jobs"]) == 1 and last["next_offset"] is None
    assert client.get("/jobs", params={"limit": 100000}).status_code == 422


def test_register_if_idle_is_one_atomic_step(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    path = tmp_path / "state.sqlite3"

    def register(k: int):
        job, busy = StateStore(path).create_job_if_idle(f"job-{k:012x}", "rt-s01e01", "main", "faces_embed", {}, f"job:{k}")
        return job is not None

    with ThreadPoolExecutor(12) as pool:
        started = list(pool.map(register, range(24)))
    assert sum(started) == 1


def test_upload_limit_is_enforced_while_reading(tmp_path):
    client = _client(tmp_path, max_upload_bytes=1 << 20)
    client.post("/episodes", json={"show_slug_or_id": "rt", "season_number": 1, "episode_number": 1})
    r = client.post("/episodes/rt-s01e01/video", files={"file": ("big.mp4", b"\0" * (2 << 20), "video/mp4")})
    assert r.status_code == 413
    r = client.post("/episodes/rt-s01e01/video", files={"other": ("x.mp4", b"123", "video/mp4")})
    assert r.status_code == 422 and "file" in r.json()["detail"]
    assert not list((tmp_path / "data").rglob("*.mp4"))


def test_episodes_run_outside_the_api_are_listed_and_reachable(client, tmp_path):
    """One registry: an episode with runs in the data dir (CLI, catalog) needs no POST /episodes."""
    marker = tmp_path / "data" / "manifests" / "cli-s02e03" / "runs" / "main" / "detect_track.json"
    marker.parent.mkdir(parents=True)
    from pipelines.schemas import StageMarker, StageName, StageState, utc_now

    marker.write_text(StageMarker(stage=StageName.detect_track, state=StageState.succeeded, fingerprint="f", config={}, started_at=utc_now()).model_dump_json())
    (tmp_path / "data" / "manifests" / "not an id").mkdir()
    listed = {e["ep_id"]: e for e in client.get("/episodes").json()["episodes"]}
    assert set(listed) == {"cli-s02e03"} and listed["cli-s02e03"]["season_number"] == 2
    assert client.get("/episodes/cli-s02e03").status_code == 200
    assert [r["run_id"] for r in client.get("/episodes/cli-s02e03/runs").json()["runs"]] == ["main"]
    # Deleted with its artifacts kept: not adopted again, until it is created anew.
    assert client.delete("/episodes/cli-s02e03").json()["artifacts_removed"] == 0
    assert client.get("/episodes").json()["episodes"] == []
    assert client.get("/episodes/cli-s02e03").status_code == 404
    assert client.post("/episodes", json={"show_slug_or_id": "cli", "season_number": 2, "episode_number": 3}).status_code == 201
    assert [e["ep_id"] for e in client.get("/episodes").json()["episodes"]] == ["cli-s02e03"]


MALFORMED_MULTIPART = {
    # what the body says vs its header: the boundary, an oversized part header, a body cut off before its end
    "another boundary": ("BOUND", b'--OTHER\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n\r\nxx\r\n--OTHER--\r\n'),
    "oversized part header": (
        "BOUND",
        b"--BOUND\r\nX-Padding: " + b"a" * 20000 + b'\r\nContent-Disposition: form-data; name="file"\r\n\r\nxx\r\n--BOUND--\r\n',
    ),
    "cut off": ("BOUND", b'--BOUND\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n\r\nno closing boundary'),
    "not multipart at all": ("BOUND", b"\x00\x01\x02 garbage"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED_MULTIPART))
def test_malformed_multipart_is_400_with_detail_and_writes_nothing(client, tmp_path, case):
    boundary, body = MALFORMED_MULTIPART[case]
    headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
    client.post("/episodes", json={"show_slug_or_id": "mp", "season_number": 1, "episode_number": 1})
    r = client.post("/episodes/mp-s01e01/video", content=body, headers=headers)
    assert r.status_code == 400 and "multipart" in r.json()["detail"], (case, r.status_code, r.text[:200])
    photo_body = body.replace(b'name="file"', b'name="files"')
    r = client.post("/shows/mp/cast/ana/faces", content=photo_body, headers=headers)
    assert r.status_code == 400 and "multipart" in r.json()["detail"], (case, r.status_code, r.text[:200])
    data = tmp_path / "data"
    assert not [p for p in data.rglob("*") if p.is_file() and ("videos" in p.parts or "facebank" in p.parts)]
    assert client.get("/shows/mp/cast/ana").status_code == 404  # the photo route created no cast member either


def bomb_png(width: int = 30000, height: int = 30000) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` pixels of one bit, in a few hundred KB: decoded,
    it would take width x height x 3 bytes (2.7 GB for the default)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = zlib.compress(b"\x00" * ((width // 8 + 1) * height), 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def test_a_decompression_bomb_photo_is_refused_from_its_header(client):
    import time

    bomb = bomb_png()
    assert len(bomb) < 1_000_000
    started = time.perf_counter()
    r = client.post("/shows/mp/cast/ana/faces", files=[("files", ("bomb.png", bomb, "image/png"))])
    elapsed = time.perf_counter() - started
    assert r.status_code == 422 and "too large" in r.json()["detail"] and "bomb.png" in r.json()["detail"]
    assert elapsed < 2.0, f"refusing the bomb took {elapsed:.1f} s: it was decoded"
    r = client.post("/shows/mp/cast/ana/faces", files=[("files", ("big.png", bomb_png(9000, 9000), "image/png"))])
    assert r.status_code == 422 and "9000 x 9000" in r.json()["detail"]


SHOW_LEVEL_RUN_SELECTORS = {"/shows/{show_id}/screentime"}
"""Show-level reports take ``run_id`` as a selector (which run of each episode), not as the run they act on."""


def test_a_run_is_named_in_the_path_and_the_seed_routes_are_one_switchable_router(tmp_path):
    """Primary routes name the run in their path only (no run_id by query or body); the seed's forms
    are served by the compat router, each marked deprecated, and SCREENALYTICS_COMPAT_ROUTES=false
    leaves only the primary ones. Every operation declares its response (a model, or its media type)."""
    from fastapi.datastructures import DefaultPlaceholder

    from serve_app.openapi import api_routes

    primary = _client(tmp_path, compat_routes=False)
    spec = primary.get("/openapi.json").json()
    named_elsewhere = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            query_run = any(p["name"] == "run_id" and p["in"] == "query" for p in op.get("parameters", []))
            body_ref = (op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {}) or {}).get("$ref", "")
            body_run = bool(body_ref) and "run_id" in spec["components"]["schemas"][body_ref.rsplit("/", 1)[-1]].get("properties", {})
            if (query_run and path not in SHOW_LEVEL_RUN_SELECTORS) or body_run:
                named_elsewhere.append(f"{method.upper()} {path}")
            assert not op.get("deprecated"), (method, path)
    assert named_elsewhere == []
    assert primary.get("/episodes/demo-s01e01/assignments").status_code == 404  # the seed's form is off
    assert primary.post("/jobs/detect_track_async", json={"ep_id": "demo-s01e01"}).status_code == 405  # only GET /jobs/{job_id} matches
    assert primary.get("/episodes/demo-s01e01/runs/main/assignments").status_code == 404  # the primary form: no such episode

    seed = _client(tmp_path / "seed")
    seed_spec = seed.get("/openapi.json").json()
    compat = {(m, p) for p, ops in seed_spec["paths"].items() for m, op in ops.items() if op.get("deprecated")}
    assert len(compat) >= 25 and set(seed_spec["paths"]) - set(spec["paths"]) == {p for _, p in compat}
    undeclared = []
    for route in api_routes(seed.app.routes):  # type: ignore[attr-defined]
        response_class = route.response_class
        declared = route.response_model is not None or (not isinstance(response_class, DefaultPlaceholder) and response_class.__name__ != "JSONResponse")
        if not declared:
            undeclared.append(f"{sorted(route.methods)} {route.path}")
    assert undeclared == []
