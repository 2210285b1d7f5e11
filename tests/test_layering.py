"""The core's import graph: no cycle, and every import points down the layers.

The layers follow the data flow (README, "Layout"): errors and hooks at the
bottom; the plugin contract and the toolkit plugins use; data and metrics;
models; the experiments (registered through ``register_experiments``) beside
the run machinery that drives them without importing them; the board, which
only reads the store; the CLI and the API on top.  The README's "Layout"
section shows the same table.  A module may import its
own package and any lower layer -- never a higher one, never a sibling
package of its own layer (``run`` and ``experiments`` know each other only
through the registry).  The graph is read from the source (every ``import``
statement, those inside functions included), so a lazy import inside a
function is a dependency like any other.

``python tests/test_layering.py [ROOT]`` prints the graph's levels (the
longest chain of imports) for the package at ROOT (default: this checkout).
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = "iqabench"
ROOT = Path(__file__).resolve().parents[1]

#: the layer of each top-level module or subpackage of iqabench (0 = bottom;
#: PACKAGE: the package's own ``__init__``, whose public API is resolved lazily)
LAYERS = {
    "errors": 0, "hookspecs": 0,
    "allocator": 1, "artifacts": 1, "params": 1, "progress": 1, PACKAGE: 1,
    "downloads": 2, "checkpoints": 2,
    "contracts": 3, "registry": 3,
    "gradients": 4, "data": 4, "metrics": 4,
    "models": 5,
    "experiments": 6, "run": 6,
    "board": 7,
    "api": 8, "cli": 8,
}
#: the most lines a module may have
MAX_LINES = 350


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    out = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _package_of(name: str, path: Path) -> str:
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def imports(root: Path = ROOT) -> dict[str, set[str]]:
    """Module -> the package modules it imports (relative imports resolved)."""
    mods = modules(root)
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    package = _package_of(name, path).split(".")
                    anchor = package[: len(package) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                # `from pkg import x`: the submodule pkg.x if there is one, else pkg itself
                candidates = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            else:
                continue
            for target in candidates:
                while target and target not in mods:  # `import a.b.c` of a module a.b: the module a.b
                    target = target.rpartition(".")[0]
                if target.split(".")[0] == PACKAGE:
                    targets.add(target)
        targets.discard(name)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def levels(graph: dict[str, set[str]]) -> dict[str, int]:
    """Each module's level: 1 + the longest chain of imports below it (a
    cycle counts as one level: its modules share theirs)."""
    component = {m: tuple(c) for c in cycles(graph) for m in c}
    memo: dict[tuple, int] = {}

    def level(members: tuple) -> int:
        if members not in memo:
            memo[members] = 0  # guards the recursion inside a component
            deps = {component.get(d, (d,)) for m in members for d in graph[m]} - {members}
            memo[members] = 1 + max((level(d) for d in deps), default=0)
        return memo[members]

    return {m: level(component.get(m, (m,))) for m in graph}


def layer(module: str) -> tuple[str, int]:
    """The top-level module or subpackage ``module`` belongs to, and its layer."""
    parts = module.split(".")
    group = parts[1] if len(parts) > 1 else PACKAGE
    if group not in LAYERS:
        raise AssertionError(f"{module}: add its package {group!r} to LAYERS (and to the README's Layout)")
    return group, LAYERS[group]


# ------------------------------------------------------------------ tests
def test_the_core_has_no_import_cycle():
    assert cycles(imports()) == []


def test_every_import_points_down_the_layers():
    upward = []
    for module, targets in sorted(imports().items()):
        group, rank = layer(module)
        for target in sorted(targets):
            other, other_rank = layer(target)
            if other != group and other_rank >= rank:
                upward.append(f"{module} -> {target} ({group} is layer {rank}, {other} layer {other_rank})")
    assert upward == []


def test_no_module_is_longer_than_the_limit():
    long = {name: n for name, path in modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_the_graph_reader_resolves_relative_imports_and_finds_a_cycle(tmp_path):
    pkg = tmp_path / PACKAGE
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .sub import b\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("def f():\n    from ..a import x\n")
    (pkg / "c.py").write_text("import iqabench.sub.b\nfrom . import a\n")
    graph = imports(tmp_path)
    assert graph["iqabench.a"] == {"iqabench.sub.b"} and graph["iqabench.sub.b"] == {"iqabench.a"}
    assert graph["iqabench.c"] == {"iqabench.sub.b", "iqabench.a"}
    assert cycles(graph) == [["iqabench.a", "iqabench.sub.b"]]
    assert levels(graph)["iqabench.c"] == 2


if __name__ == "__main__":
    where = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT
    g = imports(where)
    lv = levels(g)
    print(f"{len(g)} modules, {max(lv.values())} levels, cycles: {cycles(g) or 'none'}")
    for m in sorted(g, key=lambda m: (lv[m], m)):
        print(f"  {lv[m]:2d}  {m}")
