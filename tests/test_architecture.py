"""The shape of the code: package layering, no import cycles between modules, small modules."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from .conftest import repo_root

PACKAGES = ("actors", "pipelines", "serve_app")
LAYERS = {"actors": 0, "pipelines": 1, "serve_app": 2}
"""A package imports only from its own layer or lower ones: actors < pipelines < serve_app."""
MAX_MODULE_LINES = 400


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(repo_root()).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> first-party modules it imports (lazily or not)."""
    modules = {_module_name(p): p for pkg in PACKAGES for p in (repo_root() / pkg).rglob("*.py")}
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                candidates = [target] + [f"{target}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                candidates = [a.name for a in node.names]
            else:
                continue
            for c in candidates:
                while c and c not in modules:
                    c = c.rpartition(".")[0]
                if c and c != name:
                    graph[name].add(c)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                found.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_packages_import_only_downwards():
    wrong = [f"{a} -> {b}" for a, targets in import_graph().items() for b in targets if LAYERS[b.split(".")[0]] > LAYERS[a.split(".")[0]]]
    assert wrong == []


def test_no_import_cycles_between_modules():
    graph = import_graph()
    # A package's __init__ re-exporting from its own modules is not a cycle of behaviour.
    graph = {a: {b for b in bs if not a.startswith(b + ".") and not b.startswith(a + ".")} for a, bs in graph.items()}
    assert _cycles(graph) == []


def test_no_cycles_between_sibling_packages():
    """Collapsing each module to its package at every depth (pipelines.review.view -> pipelines.review),
    siblings import one way only: a package cycle that no module-level cycle shows still ties two
    packages into one unit of change."""
    graph = import_graph()
    found = []
    for depth in range(2, 5):
        units: dict[str, set[str]] = defaultdict(set)
        for a, targets in graph.items():
            for b in targets:
                ua, ub = ".".join(a.split(".")[:depth]), ".".join(b.split(".")[:depth])
                siblings = ua.split(".")[:-1] == ub.split(".")[:-1] and len(ua.split(".")) == len(ub.split(".")) == depth
                if ua != ub and siblings:
                    units[ua].add(ub)
        found += _cycles(units)
    assert found == []


MAX_FUNCTION_LINES = 80


def test_no_function_over_80_lines():
    long = [
        f"{p.relative_to(repo_root())}:{node.name} ({node.end_lineno - node.lineno + 1})"
        for pkg in PACKAGES
        for p in (repo_root() / pkg).rglob("*.py")
        for node in ast.walk(ast.parse(p.read_text()))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and (node.end_lineno or 0) - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == []


def test_no_module_over_400_lines():
    long = {
        str(p.relative_to(repo_root())): n
        for pkg in PACKAGES
        for p in (repo_root() / pkg).rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_the_cache_dir_default_and_s3_clients_have_one_home():
    homes = {"cache": ("actors/cache.py",), "boto3.client(": ("pipelines/storage.py",)}
    offenders = defaultdict(list)
    for pkg in PACKAGES + ("bench",):
        for p in (repo_root() / pkg).rglob("*.py"):
            text = p.read_text()
            rel = str(p.relative_to(repo_root()))
            if '".cache"' in text and rel not in homes["cache"]:
                offenders["cache"].append(rel)
            if "boto3.client(" in text and rel not in homes["boto3.client("]:
                offenders["s3"].append(rel)
    assert dict(offenders) == {}


def _config_defaults() -> dict[str, list[tuple[str, object]]]:
    """Setting name (and its short form without the section's prefix) -> [(dotted key, default)]."""
    from pipelines.stage_settings import PipelineConfig

    config = PipelineConfig()
    out: dict[str, list[tuple[str, object]]] = defaultdict(list)
    for section in PipelineConfig.model_fields:
        values = getattr(config, section)
        for name in type(values).model_fields:
            for alias in {name, name.removeprefix("track_")}:
                out[alias].append((f"{section}.{name}", getattr(values, name)))
    return out


NOT_SETTINGS = {
    ("actors/models/base.py", "device"): "the device a loaded model runs on (models.device resolved)",
    ("pipelines/schemas/run.py", "device"): "the device a run's models ran on, as recorded",
    ("pipelines/cli.py", "enabled"): "whether a progress bar draws",
}
"""Names shared with a setting that are not that setting."""


def _literal_defaults(tree: ast.AST):
    """(name, default node) of every function parameter and class-level field with a default."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args.posonlyargs + node.args.args
            yield from zip([a.arg for a in args[len(args) - len(node.args.defaults) :]], node.args.defaults)
            yield from ((a.arg, d) for a, d in zip(node.args.kwonlyargs, node.args.kw_defaults) if d is not None)
        elif isinstance(node, ast.ClassDef):
            yield from ((s.target.id, s.value) for s in node.body if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name) and s.value is not None)


def test_no_parameter_carries_a_default_of_its_own_that_differs_from_the_config():
    """A setting's default lives in pipelines/stage_settings.py (models: actors/models/config.py). A
    parameter or field named like a setting either has no default, None ("not set"), or the config's own
    (``default_of``); a literal that differs is a second default drifting from the first."""
    settings = _config_defaults()
    homes = {"pipelines/stage_settings.py", "actors/models/config.py"}
    drift = []
    for pkg in PACKAGES:
        for path in (repo_root() / pkg).rglob("*.py"):
            rel = str(path.relative_to(repo_root()))
            if rel in homes:
                continue
            for name, default in _literal_defaults(ast.parse(path.read_text())):
                if name not in settings or (rel, name) in NOT_SETTINGS:
                    continue
                try:
                    value = ast.literal_eval(default)
                except ValueError:
                    continue  # an expression: default_of(...) or a named constant checked where it is defined
                if value is not None and all(value != v for _, v in settings[name]):
                    drift.append(f"{rel}:{default.lineno} {name}={value!r}, config: {settings[name]}")
    assert drift == []


def test_parameter_objects_are_built_from_the_config_and_have_no_defaults_of_their_own():
    import dataclasses

    from pipelines.naming import NamingRules
    from pipelines.stage_settings import PipelineConfig
    from pipelines.tracking.tracker import TrackerParams
    from pipelines.tracking.validity import ValidityRules

    config = PipelineConfig()
    tracker = TrackerParams.from_config(config.detect_track, fps=24.0)
    assert (tracker.high_thresh, tracker.appearance_min, tracker.max_gap_frames) == (
        config.detect_track.track_high_thresh,
        config.detect_track.track_appearance_min,
        round(config.detect_track.track_max_gap_s * 24),
    )
    assert ValidityRules.from_config(config.cluster).junk_score == config.cluster.junk_score
    assert NamingRules.from_config(config.naming, 0.5).strong_lead == config.naming.strong_lead
    unexposed = {"center_gate"}  # no setting exposes it; its one default is in TrackerParams
    own_defaults = {
        f"{cls.__name__}.{f.name}"
        for cls in (TrackerParams, ValidityRules, NamingRules)
        for f in dataclasses.fields(cls)
        if f.name not in unexposed and (f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING)
    }
    assert own_defaults == set()


def test_artifacts_are_named_only_in_the_registry():
    """A run's files are declared once (pipelines/registry.py); everything else reads and writes them
    through those declarations, so a file's name and schema never drift apart at a call site."""
    from pipelines import registry

    homes = {"pipelines/layout.py", "pipelines/registry.py"}
    named = [
        f"{p.relative_to(repo_root())}:{n}"
        for pkg in PACKAGES + ("bench",)
        for p in (repo_root() / pkg).rglob("*.py")
        if str(p.relative_to(repo_root())) not in homes
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if ".manifest(" in line
    ]
    assert named == []
    names = [a.name for a in registry.ALL]
    assert len(names) == len(set(names))
    from pipelines.runner import STAGES

    assert all(a in registry.ALL for spec in STAGES.values() for a in spec.outputs)


SERVE_APP_SEES = {"pipelines.cli", "pipelines.ids", "pipelines.schemas", "pipelines.service", "pipelines.storage"}
"""The pipelines modules the API may import: the facade (pipelines/service.py), the id rules, the artifact
schemas, storage, and the command line ``screenalytics serve`` extends."""


def test_serve_app_talks_to_the_pipelines_through_a_small_facade():
    seen = {
        b for a, targets in import_graph().items() if a.startswith("serve_app") for b in targets if b.startswith("pipelines.")
    }  # the package itself defines nothing
    seen = {".".join(m.split(".")[:2]) if m.startswith("pipelines.schemas") else m for m in seen}
    assert seen <= SERVE_APP_SEES and len(SERVE_APP_SEES) <= 5, sorted(seen - SERVE_APP_SEES)
