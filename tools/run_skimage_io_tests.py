#!/usr/bin/env python
"""Run scikit-image's io tests twice: with real imageio, and with imgio as ``imageio``.

Usage::

    python tools/run_skimage_io_tests.py [--source DIR] [--tag v0.26.0]

``--source`` is a scikit-image checkout (a git repository: the tests are
taken from ``--tag`` with ``git archive``; or an unpacked sdist with
``skimage/io/tests`` or ``tests/skimage/io``).  Without it the script looks
for the git mirror at ``$SKIMAGE_SRC``.  The tests are copied to a temporary
folder (nothing of scikit-image is kept), then pytest runs them against the
installed scikit-image, once as is (control) and once with
``tools/imageio_shim`` first on ``PYTHONPATH`` so ``import imageio`` is imgio.

Exit status 0 when no test that passes under imageio fails under imgio.
"""
from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHIM = HERE / "imageio_shim"


def copy_tests(source: Path, tag: str, dest: Path) -> Path:
    """Copy scikit-image's io tests (and the conftest they need) into ``dest``."""
    if (source / ".git").exists() or (source / "HEAD").exists():
        members = ["tests/skimage/io", "tests/skimage/conftest.py"]
        data = subprocess.run(["git", "-C", str(source), "archive", "--format=tar", tag, *members],
                              check=True, capture_output=True).stdout
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            tar.extractall(dest, filter="data")
        return dest / "tests" / "skimage" / "io"
    for rel in ("tests/skimage/io", "skimage/io/tests", "src/skimage/io/tests"):
        if (source / rel).is_dir():
            import shutil
            target = dest / "io_tests"
            shutil.copytree(source / rel, target)
            return target
    raise SystemExit(f"no scikit-image io tests under {source}")


PYTEST_INI = """[pytest]
xfail_strict = true
filterwarnings =
    error
    ignore:.*use `imageio` or other I/O packages directly.*:FutureWarning
    ignore:Implicit conversion of A to CSR:scipy.sparse.SparseEfficiencyWarning
"""


def run(tests: Path, shim: bool, xml: Path) -> dict[str, str]:
    env = dict(os.environ)
    # never the internet: scikit-image's data fetcher (pooch/requests) goes to a
    # dead loopback proxy and fails at once, in both runs alike
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        env[var] = "http://127.0.0.1:9"
    env.pop("NO_PROXY", None), env.pop("no_proxy", None)
    if shim:
        env["PYTHONPATH"] = os.pathsep.join([str(SHIM)] + [p for p in [env.get("PYTHONPATH")] if p])
    else:
        env.pop("PYTHONPATH", None)
    # scikit-image's own pytest settings (its pyproject.toml), minus --maxfail
    (tests.parent / "pytest.ini").write_text(PYTEST_INI)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
           "-p", "no:napari", "-p", "no:npe2", "-p", "no:napari-plugin-engine",
           "-c", str(tests.parent / "pytest.ini"),
           f"--junitxml={xml}", "--rootdir", str(tests.parent), str(tests)]
    check = "import imageio, sys; sys.stdout.write(imageio.__file__)"
    where = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True, text=True)
    print(f"\n=== {'imgio (shim)' if shim else 'imageio (control)'}: imageio = {where.stdout}")
    print("$", ("PYTHONPATH=" + env["PYTHONPATH"] + " ") if shim else "", " ".join(cmd))
    subprocess.run(cmd, env=env, cwd=tests.parent)
    outcome = {}
    for case in ET.parse(xml).getroot().iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        kinds = {child.tag for child in case}
        outcome[name] = ("failed" if kinds & {"failure", "error"} else
                         "skipped" if "skipped" in kinds else "passed")
    return outcome


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", default=os.environ.get(
        "SKIMAGE_SRC", "/work/.mirror/scikit-image+scikit-image/repo"))
    ap.add_argument("--tag", default="v0.26.0")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="skimage-io-") as tmp:
        tests = copy_tests(Path(args.source), args.tag, Path(tmp))
        control = run(tests, False, Path(tmp) / "control.xml")
        shimmed = run(tests, True, Path(tmp) / "imgio.xml")

    def count(res):
        return {k: sum(v == k for v in res.values()) for k in ("passed", "failed", "skipped")}

    print("\nimageio:", count(control))
    print("imgio:  ", count(shimmed))
    regressions = sorted(n for n, v in control.items() if v == "passed" and shimmed.get(n) != "passed")
    fixed = sorted(n for n, v in shimmed.items() if v == "passed" and control.get(n) != "passed")
    for n in regressions:
        print("  passes under imageio, not under imgio:", n, shimmed.get(n))
    for n in fixed:
        print("  passes under imgio only:", n)
    print("regressions:", len(regressions))
    return 1 if regressions else 0


if __name__ == "__main__":
    sys.exit(main())
