import pytest
from pydantic import ValidationError

from pipelines.artifacts import read_model, write_model
from pipelines.ids import (
    InvalidIdError,
    make_ep_id,
    parse_ep_id,
    validate_ep_id,
    validate_run_id,
)
from pipelines.layout import RunLayout
from pipelines.registry import DETECTIONS, FACE_EMBEDDINGS, SCREENTIME, TRACKS
from pipelines.schemas import DetectionRow, StageMarker, StageName, StageState
from pipelines.storage import LocalStorage, S3Storage, StorageError


@pytest.mark.parametrize("ep_id", ["rhobh-s05e02", "the_show-s01e10", "a-b-c-s10e100"])
def test_valid_ep_ids(ep_id):
    assert validate_ep_id(ep_id) == ep_id


@pytest.mark.parametrize("ep_id", ["../etc-s01e01", "Show-s01e01", "show-s1e1", "show", "show-s01e01/x", ""])
def test_invalid_ep_ids(ep_id):
    with pytest.raises(InvalidIdError):
        validate_ep_id(ep_id)


@pytest.mark.parametrize("run_id", ["..", "../x", "a/b", ".hidden", "x" * 129])
def test_invalid_run_ids(run_id):
    with pytest.raises(InvalidIdError):
        validate_run_id(run_id)


def test_ep_id_round_trip():
    assert make_ep_id("RHOBH", 5, 2) == "rhobh-s05e02"
    assert parse_ep_id("rhobh-s05e02").season == 5


def test_storage_rejects_escaping_keys(tmp_path):
    st = LocalStorage(tmp_path)
    for key in ["../x", "/abs", "a//b", "a/../b"]:
        with pytest.raises(StorageError):
            st.write_text(key, "x")


def test_local_write_is_atomic_and_leaves_no_temp(tmp_path):
    st = LocalStorage(tmp_path)
    st.write_text("a/b.json", "1")
    st.write_text("a/b.json", "2")
    assert st.read_text("a/b.json") == "2"
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["b.json"]
    st.write_text("a/c/d.json", "3")
    assert st.children("a") == ["b.json", "c"] and st.children("none") == []


def test_artifact_rows_round_trip_and_reject_unknown_fields(tmp_path):
    st = LocalStorage(tmp_path)
    layout = RunLayout("show-s01e01", "r1")
    row = DetectionRow(ep_id="show-s01e01", ts=1.0, frame_idx=24, det_idx=0, conf=0.9, bbox_xyxy=[1, 2, 3, 4], landmarks=[[0, 0]] * 5, track_id=3)
    DETECTIONS.write(st, layout, [row])
    assert DETECTIONS.read(st, layout) == [row]
    with pytest.raises(ValidationError):
        DetectionRow.model_validate({**row.model_dump(), "surprise": 1})
    with pytest.raises(ValidationError):
        DetectionRow.model_validate({**row.model_dump(), "bbox_xyxy": [1, 2, 3]})
    marker = StageMarker(stage=StageName.cluster, state=StageState.succeeded, fingerprint="f", config={}, started_at="t")
    write_model(st, layout.marker(StageName.cluster), marker)
    assert read_model(st, layout.marker(StageName.cluster), StageMarker) == marker


def test_layout_matches_the_documented_paths():
    layout = RunLayout("show-s01e01", "r1")
    assert TRACKS.key(layout) == "manifests/show-s01e01/runs/r1/tracks.jsonl"
    assert FACE_EMBEDDINGS.key(layout) == "embeds/show-s01e01/runs/r1/faces.npy"
    assert layout.crop(7, 120) == "frames/show-s01e01/runs/r1/crops/track_0007/frame_000120.jpg"
    assert SCREENTIME.key(layout) == "manifests/show-s01e01/runs/r1/analytics/screentime.json"


def test_s3_storage_against_a_real_s3_api(s3_server, tmp_path):
    import boto3

    client = boto3.client("s3", endpoint_url=s3_server)
    client.create_bucket(Bucket="artifacts")
    st = S3Storage("artifacts", "prefix", client=client)
    st.write_text("manifests/a.json", "{}")
    st.write_bytes("embeds/b.npy", b"\x00\x01")
    assert st.exists("manifests/a.json") and not st.exists("manifests/none.json")
    assert st.list("manifests") == ["manifests/a.json"]
    st.write_text("manifests/ep-s01e01/runs/main/x.json", "{}")
    assert st.children("manifests") == ["a.json", "ep-s01e01"] and st.children("nothing") == []
    st.delete_prefix("manifests/ep-s01e01")
    assert st.read_bytes("embeds/b.npy") == b"\x00\x01"
    with pytest.raises(FileNotFoundError):
        st.read_bytes("manifests/none.json")
    big = tmp_path / "big.bin"
    big.write_bytes(b"\x07" * (9 << 20))  # above boto3's multipart threshold
    st.upload_file("raw/big.bin", big)
    assert st.read_bytes("raw/big.bin") == big.read_bytes()
    assert st.delete_prefix("manifests") == 1
    assert st.list("") == ["embeds/b.npy", "raw/big.bin"]
    _versions_follow_rewrites(st)


def _versions_follow_rewrites(st) -> None:
    st.write_text("shows/x/voices/a.json", "1")
    st.write_text("shows/x/voices/b.json", "2")
    st.write_text("shows/x/voices/deeper/c.json", "3")
    before = st.versions("shows/x/voices")
    assert sorted(before) == ["a.json", "b.json"] and st.versions("shows/none") == {}  # files directly under it only
    st.write_text("shows/x/voices/a.json", "11")
    after = st.versions("shows/x/voices")
    assert after["a.json"] != before["a.json"] and after["b.json"] == before["b.json"]


def test_local_versions_follow_rewrites(tmp_path):
    _versions_follow_rewrites(LocalStorage(tmp_path))


def test_artifacts_honour_the_umask(tmp_path):
    """Files in a data dir get the permissions a plain open() would give them (0644 under umask 022),
    so a teammate or a web server can read screentime.csv; the state store's SQLite file alike."""
    import os
    import stat

    from pipelines.storage import LocalStorage
    from serve_app.state import StateStore

    old = os.umask(0o022)
    try:
        storage = LocalStorage(tmp_path / "data")
        storage.write_bytes("manifests/ep/runs/main/screentime.csv", b"cast_id,visual_s\n")
        source = tmp_path / "video.mp4"
        source.write_bytes(b"x" * 10)
        storage.upload_file("videos/ep/episode.mp4", source)
        StateStore(tmp_path / "data" / "state.sqlite3")
        os.umask(0o027)
        storage.write_bytes("manifests/ep/runs/main/private.json", b"{}")
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "data").rglob("*") if p.is_file()}
    assert modes["screentime.csv"] == modes["episode.mp4"] == modes["state.sqlite3"] == 0o644, {k: oct(v) for k, v in modes.items()}
    assert modes["private.json"] == 0o640
