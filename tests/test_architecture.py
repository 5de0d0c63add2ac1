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
