"""What an analyst meets around the engine: the CLI's habits (version, help on every flag, JSON on stdout
and narration on stderr, progress lines in a log), the tidy exports (CSV and Parquet, per episode and
per season, read back with pandas), the OpenAPI schema, and ``pip install .`` alone giving a working CLI."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from .conftest import TEST_EP, repo_root

SCREENALYTICS = [sys.executable, "-m", "serve_app.cli"]


def _cli(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*SCREENALYTICS, *args],
        capture_output=True,
        text=True,
        cwd=repo_root(),
        timeout=timeout,
        env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **(env or {})},
    )


def _parsers(parser: argparse.ArgumentParser, name: str = "screenalytics"):
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _parsers(sub, f"{name} {sub_name}")


def test_version_and_help_text_on_every_flag():
    from pipelines.cli import build_parser
    from serve_app.cli import COMMANDS

    proc = _cli("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("screenalytics 0."), proc.stdout + proc.stderr
    undocumented = [
        f"{name} {action.option_strings or action.dest}"
        for name, parser in _parsers(build_parser(COMMANDS))
        for action in parser._actions
        if not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)) and not action.help
    ]
    assert undocumented == []
    commands = {name for name, _ in _parsers(build_parser(COMMANDS))}
    assert {"screenalytics season", "screenalytics batch", "screenalytics facebank list", "screenalytics serve"} <= commands
    for name, parser in _parsers(build_parser(COMMANDS)):
        if name.count(" ") == 1 and name != "screenalytics facebank" or name.startswith("screenalytics facebank "):
            flags = {s for a in parser._actions for s in a.option_strings}
            assert {"-v", "--quiet"} <= flags, name


def test_openapi_declares_every_response_errors_and_the_bearer_scheme(tmp_path):
    from serve_app.api import build_app
    from serve_app.settings import ApiSettings

    spec = build_app(ApiSettings(data_uri=str(tmp_path / "d"), db_path=str(tmp_path / "s.db"))).openapi()
    untyped, operations = [], 0
    for path, ops in spec["paths"].items():
        assert not path.startswith("/celery_jobs"), path  # compat routes are served, not advertised
        for method, op in ops.items():
            operations += 1
            ok = {code: r for code, r in op["responses"].items() if code.startswith("2")}
            if not any("$ref" in json.dumps(r) or "properties" in json.dumps(r) or "binary" in json.dumps(r) for r in ok.values()):
                untyped.append(f"{method.upper()} {path}")
            assert "422" in op["responses"], (method, path)
            if "{" in path:
                assert "404" in op["responses"], (method, path)
            if method in ("post", "put", "patch", "delete"):
                assert {"401", "409"} <= set(op["responses"]) and op["security"] == [{"bearerAuth": []}], (method, path)
    assert operations > 60 and untyped == []
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {**spec["components"]["securitySchemes"]["bearerAuth"], "type": "http", "scheme": "bearer"}
    upload = spec["paths"]["/episodes/{ep_id}/video"]["post"]["responses"]
    assert {"400", "413"} <= set(upload)
    mark = spec["paths"]["/episodes/{ep_id}/identities/{identity_id}/mark"]["post"]["responses"]["409"]
    assert mark["content"]["application/json"]["schema"]["$ref"].endswith("StaleClusteringResponse")


def test_line_progress_prints_a_few_lines_per_step(capsys):
    from pipelines.cli import LineProgress
    from pipelines.schemas import StageName

    progress = LineProgress()
    for done in range(0, 301, 3):
        progress(StageName.detect_track, done, 300, step="detect")
    progress(StageName.detect_track, 300, 300, step="track")
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "detect_track: detect 0/300 (0%)" and lines[-1] == "detect_track: track 300/300 (100%)"
    assert len(lines) == 6  # 0, 25, 50, 75, 100 % of detect; track done


@pytest.fixture(scope="module")
def analyst_data(pipeline_run, tmp_path_factory):
    """A copy of the session's pipeline run, its screen time recomputed through the CLI (piped, --json)."""
    storage, layout, *_ = pipeline_run
    data = tmp_path_factory.mktemp("analyst") / "data"
    shutil.copytree(storage.uri, data)
    proc = _cli("run", "--ep-id", TEST_EP, "--stage", "screentime", "--force", "--json", "--data-dir", str(data), "--address", "local")
    return data, layout, proc


@pytest.mark.slow
def test_run_json_on_stdout_narration_and_progress_lines_on_stderr(analyst_data):
    _, _, proc = analyst_data
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)  # stdout is the JSON document alone
    assert out["ep_id"] == TEST_EP and [s["stage"] for s in out["stages"]] == ["screentime"]
    assert {row["kind"] for row in out["people"]} >= {"unknown"} and all("speaking_s" not in row for row in out["people"])
    assert "screentime: screentime 0/1 (0%)" in proc.stderr and "screentime: screentime 1/1 (100%)" in proc.stderr


@pytest.mark.slow
def test_episode_and_season_exports_are_one_tidy_table(analyst_data, tmp_path):
    import pandas as pd

    from pipelines.exports import EXPORT_COLUMNS

    data, layout, _ = analyst_data
    analytics = data / "manifests" / TEST_EP / "runs" / layout.run_id / "analytics"
    episode = pd.read_parquet(analytics / "export.parquet")
    csv = pd.read_csv(analytics / "export.csv")
    assert tuple(episode.columns) == tuple(csv.columns) == EXPORT_COLUMNS
    assert len(episode) == len(csv) >= 3 and set(episode["ep_id"]) == {TEST_EP}
    assert episode["speaking_s"].isna().all() and csv["speaking_s"].isna().all()  # the test episode has no audio track: not measured, not 0.0
    people = episode[episode["kind"] == "unknown"]
    assert (people["seconds"] > 0).all() and (people["first_seen_s"] < people["last_seen_s"]).all() and (people["appearances"] >= 1).all()
    assert all((data / thumb).is_file() for thumb in episode["thumbnail"])

    # A second episode of the show in the data dir: the season covers both, whichever catalog made them.
    for area in ("manifests", "embeds", "frames"):
        src = data / area / TEST_EP
        if src.is_dir():
            shutil.copytree(src, data / area / "test-s01e02")
    out = tmp_path / "season.parquet"
    proc = _cli("season", "--show", "test", "--run-id", layout.run_id, "--format", "parquet", "--out", str(out), "--data-dir", str(data))
    assert proc.returncode == 0, proc.stderr
    season = pd.read_parquet(out)
    assert sorted(set(season["ep_id"])) == [TEST_EP, "test-s01e02"] and tuple(season.columns) == EXPORT_COLUMNS
    both = pd.concat([pd.read_parquet(p) for p in (analytics / "export.parquet", out)], ignore_index=True)  # no reshaping
    assert list(both.dtypes) == list(season.dtypes) and len(both) == len(episode) + len(season)
    listed = json.loads(_cli("season", "--show", "test", "--run-id", layout.run_id, "--json", "--data-dir", str(data)).stdout)
    assert listed["episodes"] == [TEST_EP, "test-s01e02"] and len(listed["rows"]) == len(season)
    assert _cli("season", "--show", "nosuchshow", "--data-dir", str(data)).returncode == 2


@pytest.mark.slow
def test_pip_install_alone_gives_a_working_cli(test_episode, tmp_path):
    """``pip install .`` in a fresh venv (no onnxruntime, no speech models): a run works, says once what
    it did without them, and reports no speaking time rather than 0.0."""
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    install = subprocess.run([str(py), "-m", "pip", "install", "-q", str(repo_root())], capture_output=True, text=True, timeout=1200)
    assert install.returncode == 0, install.stderr[-3000:]
    assert subprocess.run([str(py), "-c", "import onnxruntime"], capture_output=True).returncode != 0
    cli = env_dir / "bin" / "screenalytics"
    assert subprocess.run([str(cli), "--version"], capture_output=True, text=True).stdout.startswith("screenalytics ")
    video, _ = test_episode
    data = tmp_path / "data"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": ""}
    proc = subprocess.run(
        [str(cli), "run", str(video), "--ep-id", "pip-s01e01", "--data-dir", str(data), "--address", "local"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=900,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "OpenCV's DNN" in proc.stderr and "audio stage was skipped" in proc.stderr
    export = Path(data / "manifests" / "pip-s01e01" / "runs" / "main" / "analytics" / "export.csv").read_text().splitlines()
    header = export[0].split(",")
    assert len(export) >= 4 and all(line.split(",")[header.index("speaking_s")] == "" for line in export[1:])


@pytest.mark.slow
def test_the_demo_names_its_cast_from_photos_and_compares_with_the_truth(tmp_path):
    proc = _cli("demo", "--data-dir", str(tmp_path / "data"), "--address", "local", "--no-progress", timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    lines = {
        name: next((line for line in out.splitlines() if line.strip().startswith(name) and "auto" in line), None) for name in ("Barack Obama", "Joe Biden")
    }
    assert all(lines.values()), out  # both named automatically, from one reference photo each
    truth = out.split("against the sample's ground truth:")[1]
    for name in ("Barack Obama", "Joe Biden"):
        row = next(line for line in truth.splitlines() if line.strip().startswith(name))
        true_s, measured_s = (float(x) for x in re.findall(r"(\d+\.\d+)s", row)[:2])
        assert abs(measured_s - true_s) <= 0.1 * true_s, row
    assert "unnamed" in truth and (tmp_path / "data" / "manifests" / "sample-s01e01" / "runs" / "main" / "analytics" / "export.parquet").is_file()
