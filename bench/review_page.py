"""Review page benchmark: an episode with 200 identities and 10 faces each, opened in headless Chromium.

    python -m bench.review_page [--identities 200] [--repeat 5]

The run is built from a real run (the test episode, computed once) by repeating its tracks over a
20-minute timeline, so the API reads as much as it would for a long episode: 200 identities of 2
tracks with 5 embedded faces each (real crops). Reported: the bundle's server time, the time from
navigation to all cards rendered (cold, then with the browser cache warm), and how many thumbnail
requests the warm load made (immutable URLs: none should reach the server).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

from pipelines.layout import RunLayout
from pipelines.registry import CLUSTER_CENTROIDS, FACE_EMBEDDINGS, FACES, IDENTITIES, IDENTITY_NAMES, TRACK_METRICS, TRACK_PROTOTYPES, TRACK_REPS, TRACKS, VIDEO
from pipelines.runner import run_pipeline
from pipelines.sample.episode import render_episode, test_episode_spec
from pipelines.sample.media import load_sprites
from pipelines.schemas import (
    ClusterCentroid,
    ClusterCentroidsFile,
    Identity,
    TrackRep,
)
from pipelines.storage import LocalStorage

from .episodes import bench_dir

EP = "bigreview-s01e01"


def build_run(root: Path, identities: int) -> LocalStorage:
    source = LocalStorage(root / "source")
    video = root / "test_episode.mp4"
    if not video.is_file():
        render_episode(test_episode_spec(), load_sprites(), video)
    run_pipeline(storage=source, ep_id="bigreview-s01e99", video=str(video))
    src = RunLayout("bigreview-s01e99", "main")
    target = LocalStorage(root / "target")
    shutil.rmtree(target.uri, ignore_errors=True)
    layout = RunLayout(EP, "main")
    for area in ("manifests", "embeds", "frames"):
        shutil.copytree(Path(source.uri) / area / src.ep_id / "runs" / "main", Path(target.uri) / area / EP / "runs" / "main")
    tracks = TRACKS.read(source, src)
    faces = [f for f in FACES.read(source, src) if f.embedding_row is not None and f.crop_path]
    vectors = np.load(Path(source.uri) / FACE_EMBEDDINGS.key(src))
    meta = VIDEO.read(source, src)
    duration = 1200.0
    VIDEO.write(target, layout, meta.model_copy(update={"duration_s": duration, "frame_count": int(duration * meta.fps)}))
    new_tracks, new_faces, reps, protos, rows, idents, cents = [], [], [], [], [], [], []
    rng = np.random.default_rng(0)
    tid = 0
    for k in range(identities):
        direction = rng.normal(size=vectors.shape[1]).astype(np.float32)
        members = []
        for _ in range(2):
            tid += 1
            base = tracks[tid % len(tracks)]
            start = (tid * 2.7) % (duration - 10)
            new_tracks.append(base.model_copy(update={"track_id": tid, "start_s": start, "end_s": start + 3.0, "first_ts": start, "last_ts": start + 3.0}))
            track_faces = []
            for j in range(5):
                f = faces[(tid * 5 + j) % len(faces)]
                crop = layout.crop(tid, 100 * j)
                (Path(target.uri) / crop).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(Path(source.uri) / f.crop_path, Path(target.uri) / crop)  # type: ignore[arg-type]
                v = vectors[f.embedding_row] + 0.3 * direction / np.linalg.norm(direction)
                rows.append(v / np.linalg.norm(v))
                track_faces.append(
                    f.model_copy(
                        update={
                            "face_id": f"face_{tid:04d}_{100 * j:06d}",
                            "track_id": tid,
                            "frame_idx": 100 * j,
                            "embedding_row": len(rows) - 1,
                            "crop_path": crop,
                        }
                    )
                )
            new_faces += track_faces
            proto = np.mean([rows[f.embedding_row] for f in track_faces], axis=0)  # type: ignore[index]
            protos.append(proto / np.linalg.norm(proto))
            reps.append(
                TrackRep(
                    track_id=tid, faces_count=5, embedded_count=5, rep_face_id=track_faces[0].face_id, prototype_row=len(protos) - 1, spread=0.1, mixed=False
                )
            )
            members.append(tid)
        centroid = np.mean([protos[m - 1] for m in members], axis=0)
        identity_id = f"id_{k + 1:04d}"
        idents.append(Identity(identity_id=identity_id, track_ids=members, size=2, cohesion=0.9, rep_face_id=f"face_{members[0]:04d}_000000", first_ts=0.0))
        cents.append(ClusterCentroid(identity_id=identity_id, centroid=[float(x) for x in centroid / np.linalg.norm(centroid)]))
    TRACKS.write(target, layout, new_tracks)
    FACES.write(target, layout, new_faces)
    TRACK_REPS.write(target, layout, reps)
    FACE_EMBEDDINGS.write(target, layout, np.asarray(rows, np.float32))
    TRACK_PROTOTYPES.write(target, layout, np.asarray(protos, np.float32))
    ident_file = IDENTITIES.read(target, layout)
    IDENTITIES.write(target, layout, ident_file.model_copy(update={"identities": idents, "co_occurring_tracks": [], "unclustered_track_ids": []}))
    CLUSTER_CENTROIDS.write(target, layout, ClusterCentroidsFile(ep_id=EP, run_id="main", centroids=cents))
    metrics = TRACK_METRICS.read(target, layout)
    TRACK_METRICS.write(target, layout, metrics.model_copy(update={"ep_id": EP, "tracks": len(new_tracks)}))
    (Path(target.uri) / IDENTITY_NAMES.key(layout)).unlink(missing_ok=True)
    return target


class CropCounter:
    """Counts the crop requests that reach the server (browser cache hits never do)."""

    def __init__(self, app):  # type: ignore[no-untyped-def]
        self.app = app
        self.crops = 0

    async def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "http" and "/crops/" in scope["path"]:
            self.crops += 1
        await self.app(scope, receive, send)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--identities", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    import shutil as sh

    import uvicorn
    from playwright.sync_api import sync_playwright

    from pipelines.ray_env import ensure_ray
    from serve_app.api import build_app
    from serve_app.settings import ApiSettings

    chromium = sh.which("chromium")
    if chromium is None:
        print("chromium is not installed (apt-get install chromium)")
        return 2
    ensure_ray()
    root = bench_dir() / "review_page"
    storage = build_run(root, args.identities)
    app = CropCounter(build_app(ApiSettings(data_uri=storage.uri, db_path=str(root / "state.sqlite3"), allowed_hosts=("127.0.0.1",))))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=8799, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    import httpx

    bundle_ms = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        r = httpx.get(f"http://127.0.0.1:8799/episodes/{EP}/faces_review_bundle?faces=10", timeout=60)
        bundle_ms.append(1000 * (time.perf_counter() - t0))
        assert r.status_code == 200 and len(r.json()["identities"]) == args.identities
    url = f"http://127.0.0.1:8799/review/episodes/{EP}"
    script = f"document.querySelectorAll('.identity').length === {args.identities}"
    cold, warm, warm_requests = [], [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        for _ in range(args.repeat):
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            page = context.new_page()
            for bucket, target in ((cold, url), (warm, url + "?run_id=main")):  # the second: a new navigation, not a reload
                before = app.crops
                t0 = time.perf_counter()
                page.goto(target)
                page.wait_for_function(script, timeout=30000)
                bucket.append(1000 * (time.perf_counter() - t0))
                page.evaluate("document.querySelectorAll('img[loading=lazy]').forEach(i => (i.loading = 'eager'))")  # load every thumbnail
                page.wait_for_function("Array.from(document.images).every(i => i.complete)", timeout=60000)
                if bucket is warm:  # thumbnails that reached the server, not served by the browser's cache
                    warm_requests.append(app.crops - before)
            context.close()
        browser.close()
    server.should_exit = True
    result = {
        "identities": args.identities,
        "faces_per_identity": 10,
        "bundle_server_ms_median": round(statistics.median(bundle_ms), 1),
        "cards_rendered_cold_ms_median": round(statistics.median(cold), 1),
        "cards_rendered_warm_ms_median": round(statistics.median(warm), 1),
        "thumbnail_requests_on_warm_load": warm_requests,
        "thumbnail_requests_total": app.crops,
    }
    print(json.dumps(result, indent=2))
    (Path(__file__).parent / "results" / "review_page_2core.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
