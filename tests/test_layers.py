"""The import-layer contract of src/edgewise, checked from the source with `ast` (no imports run).

Packages sit in layers, low to high; a module may import from its own layer and the ones below, never above, and
no two packages or modules may import each other in a cycle. Imports inside functions count the same as module-level
ones: moving an import into a function hides a cycle from Python, not from this test.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# Low to high. A top-level module or package of edgewise belongs to exactly one layer.
LAYERS: list[set[str]] = [
    {"edgewise", "errors", "registry", "home", "staging", "formats", "progress", "data", "outdir", "numerics",
     "plugins"},  # plugins imports the registering modules by name (importlib), never statically
    {"models"},
    {"export"},
    {"runtime"},
    # PII detection and the tagger's training (which exports through `export`): below everything that routes or
    # serves, so the router and the server import it and it imports neither.
    {"privacy"},
    {"compress"},
    {"evaluate"},
    {"report"},  # the report row and writers: read dicts; of the layers below, only models.kinds
    {"bench", "devices"},
    {"optimize"},
    {"route"},
    {"serve"},
    {"apps"},
    {"cli", "__main__"},
]

# Imports that break the contract today, each with the file to fix: (importer, imported) -> why it is allowed.
# Keep these lists empty where possible; test_the_allowed_exceptions_are_still_needed makes them shrink only.
ALLOWED_UPWARD: dict[tuple[str, str], str] = {}
ALLOWED_CYCLE_EDGES: dict[tuple[str, str], str] = {}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph(root: Path, package: str = "edgewise") -> dict[str, dict[str, int]]:
    """module -> {imported module of `package`: line}, for every import statement anywhere in the file."""
    files = {module_name(p, root): p for p in sorted((root / package).rglob("*.py"))}
    graph: dict[str, dict[str, int]] = {}
    for mod, path in files.items():
        is_pkg = path.name == "__init__.py"
        edges: dict[str, int] = {}
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = mod.split(".")[: len(mod.split(".")) - node.level + (1 if is_pkg else 0)]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                # `from pkg import sub` imports the submodule when there is one, else a name of pkg itself.
                targets = [f"{source}.{a.name}" if f"{source}.{a.name}" in files else source for a in node.names]
            else:
                continue
            for t in targets:
                while t and t not in files and "." in t:  # `import edgewise.x.y` of a name: its module
                    t = t.rsplit(".", 1)[0]
                if t in files and t != mod:
                    edges.setdefault(t, node.lineno)
        graph[mod] = edges
    return graph


def component(mod: str) -> str:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def layer_of(mod: str) -> int:
    c = component(mod)
    for i, layer in enumerate(LAYERS):
        if c in layer:
            return i
    raise KeyError(c)


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iterative: the components of more than one node (the cycles)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[set[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = set()
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.add(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(comp)
    return out


def upward_imports(graph: dict[str, dict[str, int]], root: Path) -> list[str]:
    bad = []
    for mod, edges in sorted(graph.items()):
        for target, line in sorted(edges.items()):
            if layer_of(target) > layer_of(mod) and (mod, target) not in ALLOWED_UPWARD:
                path = root / (mod.replace(".", "/") + ".py")
                where = path if path.exists() else root / mod.replace(".", "/") / "__init__.py"
                bad.append(f"{where.relative_to(root)}:{line} imports {target} "
                           f"({component(mod)} is below {component(target)})")
    return bad


def package_cycles(graph: dict[str, dict[str, int]]) -> list[set[str]]:
    pkgs: dict[str, set[str]] = defaultdict(set)
    for mod, edges in graph.items():
        for target in edges:
            if component(target) != component(mod):
                pkgs[component(mod)].add(component(target))
    return strongly_connected(pkgs)


def module_cycles(graph: dict[str, dict[str, int]], allowed=()) -> list[set[str]]:
    return strongly_connected({m: {t for t in e if (m, t) not in allowed} for m, e in graph.items()})


@pytest.fixture(scope="module")
def graph():
    return import_graph(SRC)


def test_every_package_has_a_layer(graph):
    missing = sorted({component(m) for m in graph} - set().union(*LAYERS))
    assert not missing, f"add {missing} to LAYERS in tests/test_layers.py (low to high)"


def test_no_import_reaches_a_higher_layer(graph):
    bad = upward_imports(graph, SRC)
    assert not bad, "upward imports:\n" + "\n".join(bad)


def test_no_cycle_between_packages(graph):
    assert package_cycles(graph) == []


def test_no_cycle_between_modules(graph):
    cycles = module_cycles(graph, ALLOWED_CYCLE_EDGES)
    assert not cycles, "import cycles (break each by moving what both need into a module below them):\n" + \
        "\n".join(" <-> ".join(sorted(c)) for c in cycles)


def test_the_allowed_exceptions_are_still_needed(graph):
    """An exception whose import is gone, or no longer closes a cycle, must be deleted: the lists only shrink."""
    cycles = module_cycles(graph)
    stale = [f"{m} -> {t}" for m, t in ALLOWED_CYCLE_EDGES
             if t not in graph.get(m, {}) or not any(m in c and t in c for c in cycles)]
    stale += [f"{m} -> {t}" for m, t in ALLOWED_UPWARD if t not in graph.get(m, {})]
    assert not stale, "delete these exceptions from tests/test_layers.py: " + ", ".join(stale)


# Offline routing evaluation (`edgewise route eval`, calibration) lives in the subpackage route.eval, above the
# online router in spirit: only its own modules and the CLI may import it, so serving never loads it.
OFFLINE_EVAL = "edgewise.route.eval"


def test_only_the_cli_imports_the_offline_routing_evaluation(graph):
    bad = [f"{mod} imports {target}" for mod, edges in sorted(graph.items()) for target in sorted(edges)
           if (target == OFFLINE_EVAL or target.startswith(OFFLINE_EVAL + "."))
           and not (mod.startswith(OFFLINE_EVAL) or component(mod) in {"cli", "__main__"})]
    assert not bad, "the online code imports the offline evaluation:\n" + "\n".join(bad)


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = tmp_path / "edgewise" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return tmp_path


def test_the_checker_catches_upward_imports_and_cycles(tmp_path):
    root = _tree(tmp_path, {
        "__init__.py": "",
        "errors.py": "",
        "models/__init__.py": "from edgewise.errors import *\n",
        "runtime/__init__.py": "def f():\n    from edgewise.compress import quantize  # hidden in a function\n",
        "compress/__init__.py": "from edgewise.runtime import x\nfrom . import grid\n",
        "compress/grid.py": "from .. import compress\n",
    })
    g = import_graph(root)
    assert g["edgewise.compress.grid"] == {"edgewise.compress": 1}  # relative imports resolve
    assert [b.split(" imports ")[1].split(" ")[0] for b in upward_imports(g, root)] == ["edgewise.compress"]
    assert package_cycles(g) == [{"compress", "runtime"}]
    assert module_cycles(g) == [{"edgewise.compress", "edgewise.compress.grid", "edgewise.runtime"}]
    assert module_cycles(g, {("edgewise.runtime", "edgewise.compress")}) == [{"edgewise.compress",
                                                                              "edgewise.compress.grid"}]
