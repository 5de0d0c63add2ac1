"""Bad input ends with a clear message and a non-zero exit code, and writes no artifact."""

import re
import subprocess
import sys

import pytest

from pipelines.video import VideoError, probe_video

from .conftest import repo_root


@pytest.fixture()
def bad_files(tmp_path, test_episode):
    video, _ = test_episode
    data = video.read_bytes()
    files = {
        "missing": tmp_path / "nope.mp4",
        "empty": tmp_path / "empty.mp4",
        "text": tmp_path / "notes.mp4",
        "truncated": tmp_path / "truncated.mp4",
    }
    files["empty"].write_bytes(b"")
    files["text"].write_text("this is not a video\n" * 100)
    files["truncated"].write_bytes(data[: len(data) * 2 // 3])
    return files


@pytest.mark.parametrize(
    "kind, message",
    [("missing", "not found"), ("empty", "empty"), ("text", "cannot read"), ("truncated", "truncated")],
)
def test_probe_rejects(bad_files, kind, message):
    with pytest.raises(VideoError, match=message):
        probe_video(bad_files[kind])


def test_truncated_with_index_up_front_is_caught(tmp_path, sprites):
    """A 'fast start' MP4 keeps its index at the front: cutting it leaves a readable header."""
    import av

    path = tmp_path / "faststart.mp4"
    with av.open(str(path), "w", options={"movflags": "faststart"}) as out:
        stream = out.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        import numpy as np

        for i in range(240):
            frame = np.full((240, 320, 3), i % 255, np.uint8)
            for p in stream.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")):
                out.mux(p)
        for p in stream.encode():
            out.mux(p)
    data = path.read_bytes()
    cut = tmp_path / "faststart_cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoError, match="truncated|corrupt"):
        probe_video(cut)


def run_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.mark.parametrize("kind", ["missing", "empty", "text", "truncated"])
def test_cli_bad_video_exit_code_and_no_artifacts(bad_files, tmp_path, kind):
    data = tmp_path / "data"
    proc = run_cli("run", str(bad_files[kind]), "--ep-id", "show-s01e01", "--data-dir", str(data), cwd=repo_root())
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    assert not (data / "manifests").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--ep-id", "../../etc"], "invalid ep_id"),
        (["--ep-id", "show-s01e01", "--run-id", "../x"], "invalid run_id"),
        (["--ep-id", "show-s01e01", "--profile", "turbo"], "unknown profile"),
        (["--ep-id", "show-s01e01", "--set", "detect_track.detect_fps=-2"], "detect_track.detect_fps"),
    ],
)
def test_cli_bad_ids_and_settings(test_episode, tmp_path, args, message):
    video, _ = test_episode
    proc = run_cli("run", str(video), *args, "--data-dir", str(tmp_path / "d"), cwd=repo_root())
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert not (tmp_path / "d" / "manifests").exists()


@pytest.mark.slow
def test_cli_runs_and_prints_the_table(test_episode, tmp_path):
    video, _ = test_episode
    proc = run_cli("run", str(video), "--ep-id", "show-s01e01", "--data-dir", str(tmp_path / "d"), "--no-progress", cwd=repo_root())
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "identity" in proc.stdout and "id_0001" in proc.stdout and "artifacts:" in proc.stderr  # the result on stdout, narration on stderr
    assert (tmp_path / "d" / "manifests" / "show-s01e01" / "runs" / "main" / "analytics" / "screentime.csv").is_file()
    # Nothing alarming for a newcomer: no Ray ERROR/WARNING lines (a core_worker "E" line about actor
    # constructor arguments used to appear on every run), no Python warnings.
    noise = [line for line in proc.stderr.splitlines() if re.search(r"^\[\S+ \S+ [EW] |\b(ERROR|WARNING)\b|Warning\b", line)]
    assert not noise, noise
