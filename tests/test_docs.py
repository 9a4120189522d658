"""The documentation builds without a warning, every example in it runs, and the
plugin written in docs/plugins.md passes the conformance suite."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from imgio.core import registry
from imgio.testing import PluginConformance

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLES = DOCS / "examples"


def _sphinx(builder: str, tmp_path: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-E",
           "-b", builder, "-d", str(tmp_path / "doctrees"), str(DOCS), str(tmp_path / builder)]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=540)


@pytest.mark.slow
def test_docs_build_without_warnings(tmp_path):
    result = _sphinx("html", tmp_path)
    assert result.returncode == 0, f"sphinx-build -W -b html failed:\n{result.stderr[-6000:]}"
    # numpydoc reports docstrings it cannot parse as Python warnings, which -W misses
    assert "Warning" not in result.stderr, result.stderr[-6000:]
    html = tmp_path / "html"
    for page in ("index", "getting-started", "v3", "v2", "formats", "microscopy", "cli",
                 "migration", "performance", "plugins", "api"):
        assert (html / f"{page}.html").is_file(), page
    api = (html / "api.html").read_text(encoding="utf-8")
    for name in ("imgio.v3.imread", "imgio.v2.mimread", "imgio.errors.NoPluginError",
                 "imgio.core.plugin.PluginV3", "imgio.core.registry.PluginSpec"):
        assert f'id="{name}"' in api, name


@pytest.mark.slow
def test_docs_examples_run(tmp_path):
    result = _sphinx("doctest", tmp_path)
    report = tmp_path / "doctest" / "output.txt"
    text = report.read_text(encoding="utf-8") if report.exists() else ""
    assert result.returncode == 0, f"doctests failed:\n{text[-6000:]}\n{result.stderr[-3000:]}"
    assert "0 failures in tests" in text
    assert " tests" in text and "\n0 tests" not in text


# -- plugin example: start
def _load_example():
    spec = importlib.util.spec_from_file_location("rawplugin", EXAMPLES / "rawplugin.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["rawplugin"] = module
    spec.loader.exec_module(module)
    return module


class TestRawPlugin(PluginConformance):
    plugin = "rawimg"
    extension = ".rawimg"
    lossless = True
    batch = False  # one ndimage per file

    @pytest.fixture(autouse=True)
    def registered(self, monkeypatch):
        rawplugin = _load_example()
        spec = registry.PluginSpec(
            name="rawimg", module="rawplugin", class_name="RawPlugin",
            extensions=(".rawimg",), modes="iv", description="Example raw format",
            backend="numpy", sniff=rawplugin.sniff)
        monkeypatch.setattr(registry, "PLUGINS", registry.PLUGINS + [spec])

    def make_image(self, seed=0):
        return np.random.default_rng(seed).integers(0, 1000, (12, 10), dtype=np.uint16)
# -- plugin example: end


# -- every example runs when pasted into a fresh interpreter -----------------------------------
def _examples():
    """(id, code) of every ``{doctest}`` and ``python`` block of the docs pages."""
    import re
    found = []
    for page in sorted(DOCS.glob("*.md")):
        text = page.read_text(encoding="utf-8")
        for k, m in enumerate(re.finditer(r"^```(\{doctest\}|python)[^\n]*\n(.*?)^```", text,
                                          re.S | re.M)):
            line = text[:m.start()].count("\n") + 1
            found.append(pytest.param(m.group(1), m.group(2), id=f"{page.stem}:{line}"))
    return found


_RUN_ALONE = r'''
import doctest, sys
text = sys.stdin.read()
kind = sys.argv[1]
if kind == "python":
    exec(compile(text, "<docs example>", "exec"), {"__name__": "__main__"})
else:
    test = doctest.DocTestParser().get_doctest(text, {"__name__": "__main__"}, "example",
                                               "<docs>", 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    sys.exit(1 if runner.failures else 0)
'''


@pytest.mark.parametrize("kind, code", _examples())
def test_docs_example_runs_alone(kind, code, tmp_path):
    """Each example as a user pastes it: a new interpreter, an empty folder, no setup."""
    import shutil
    shutil.copy(EXAMPLES / "rawplugin.py", tmp_path / "rawplugin.py")  # pages say: save it here
    result = subprocess.run([sys.executable, "-c", _RUN_ALONE, kind], input=code,
                            capture_output=True, text=True, cwd=tmp_path, timeout=120,
                            env={**__import__("os").environ, "PYTHONPATH": str(tmp_path)})
    assert result.returncode == 0, (result.stdout[-4000:] + result.stderr[-3000:])
