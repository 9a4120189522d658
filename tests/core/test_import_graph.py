"""No import cycle anywhere in imgio, counting imports inside functions and modules
loaded by name (``importlib.import_module("imgio....")``), and the layering rules:
the core (contract, registry, plugin choice, resources) imports nothing above it."""
from __future__ import annotations

import ast
import pathlib

import imgio

ROOT = pathlib.Path(imgio.__file__).parent


def _module_name(path: pathlib.Path) -> tuple[str, str]:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    is_pkg = parts[-1] == "__init__"
    if is_pkg:
        parts = parts[:-1]
    mod = ".".join(parts)
    return mod, (mod if is_pkg else ".".join(parts[:-1]))


def imports_of(source: str, package: str, modules=()) -> set[str]:
    """Every imgio module ``source`` imports: module level, in functions, by name.

    ``from pkg import sub`` counts as importing ``pkg.sub`` alone when ``sub`` is one
    of ``modules`` (``pkg`` itself is then already imported, as its parent)."""
    deps: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            deps.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            subs = {f"{prefix}.{a.name}" for a in node.names}
            deps.update(subs)
            if not subs <= set(modules):
                deps.add(prefix)
        elif isinstance(node, ast.Call):  # importlib.import_module("imgio.x"), __import__("imgio.x")
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in ("import_module", "__import__") and node.args and isinstance(
                    node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                deps.add(node.args[0].value)
    return {d for d in deps if d == "imgio" or d.startswith("imgio.")}


def import_graph() -> dict[str, set[str]]:
    paths = {_module_name(p): p for p in ROOT.rglob("*.py")}
    modules = {mod for mod, _ in paths}
    graph = {}
    for (mod, package), path in paths.items():
        graph[mod] = imports_of(path.read_text(encoding="utf-8"), package, modules)
    # ``from imgio.x import name``: keep the modules only
    return {m: {d for d in deps if d in graph and d != m} for m, deps in graph.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                cycles.append(stack[stack.index(d):] + [d])
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    return cycles


def test_graph_sees_function_level_and_by_name_imports():
    src = ("def f():\n    from ..lazy import x\n"
           "def g():\n    import importlib\n    importlib.import_module('imgio.lazy')\n")
    assert imports_of(src, "imgio.core") >= {"imgio.lazy", "imgio.lazy.x"}
    graph = {"imgio.core.plugin": {"imgio.lazy"}, "imgio.lazy": {"imgio.core.plugin"}}
    assert find_cycles(graph) == [["imgio.core.plugin", "imgio.lazy", "imgio.core.plugin"]]


def test_no_import_cycles():
    graph = import_graph()
    assert len(graph) > 40 and "imgio.cli" in graph
    # the top package serves names through its lazy __getattr__ (nothing eagerly): a
    # cycle through ``imgio`` itself is no cycle at import time
    cycles = [c for c in find_cycles(graph) if "imgio" not in c]
    assert cycles == []


def test_core_imports_nothing_above_it():
    graph = import_graph()
    core = [m for m in graph if m.startswith("imgio.core")]
    above = ("imgio.lazy", "imgio.v2", "imgio.v3", "imgio.cli", "imgio.convert",
             "imgio.napari", "imgio.lazyio")
    for m in core:
        bad = {d for d in graph[m] if d.startswith(above)}
        if m == "imgio.core.registry":  # it imports the formats' light sniffers, no plugin
            bad |= {d for d in graph[m] if d.startswith("imgio.plugins.")
                    and not d.endswith(("_sniff", ".tiff", ".hdf5"))}
        else:
            bad |= {d for d in graph[m] if d.startswith("imgio.plugins")}
        assert not bad, (m, bad)


def test_core_loads_no_module_by_name_except_plugins_from_their_spec():
    for path in (ROOT / "core").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        if path.name == "registry.py":
            continue
        assert "import_module" not in text, path.name


def test_core_alone_loads_no_layer_above(tmp_path):
    """Without imgio.v3 or imgio.lazy, the core runs and to_dask says what to import."""
    import subprocess
    import sys
    path = tmp_path / "a.npy"
    code = f"""
import sys
import numpy as np
from imgio.core.imopen import imopen
np.save({str(path)!r}, np.arange(6).reshape(2, 3))
with imopen({str(path)!r}, "r") as f:
    assert f.read().shape == (2, 3)
    try:
        f.to_dask()
    except RuntimeError as exc:
        assert "import imgio.lazy" in str(exc), exc
    else:
        raise AssertionError("to_dask without the lazy layer")
above = [m for m in sys.modules if m.startswith(("imgio.lazy", "imgio.v2", "imgio.v3",
                                                 "imgio.cli", "imgio.convert"))]
assert above == [], above
import imgio.v3
with imopen({str(path)!r}, "r") as f:
    assert f.to_dask().compute().shape == (2, 3)
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
