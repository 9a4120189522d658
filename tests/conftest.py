"""Shared fixtures.  Every fixture is generated here or copied in tests/data."""
import os
import resource
import sys
from pathlib import Path

import pytest

# the repository root, so the shared helper modules import as ``tests.servers`` and
# ``tests.pairwise`` however pytest was started (appended: an installed imgio still wins)
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.append(_ROOT)

DATA = Path(__file__).parent / "data"


@pytest.fixture
def data_dir() -> Path:
    """Folder of the real sample images (copied from the public imageio test set)."""
    return DATA


# Property tests and fuzzing: random in development (to find new cases), but
# derandomized in CI so a run is reproducible and a red build is never luck.
from hypothesis import settings  # noqa: E402

settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


# -- the suite never exhausts the machine (issue 23) ------------------------------------------
#: size limit of every read in the fuzz and robustness tests: a mutated header
#: that declares an image of the machine's size is refused, never allocated
FUZZ_MAX_BYTES = 256 << 20

#: modules whose tests read mutated, truncated or hostile files
_GUARDED_MODULES = ("test_robustness", "test_integrity", "test_fasttiff")


@pytest.fixture
def small_size_limit(monkeypatch):
    """``IMGIO_MAX_BYTES`` of 256 MiB for the test (and every child it starts)."""
    from imgio.core import limits
    monkeypatch.setenv("IMGIO_MAX_BYTES", str(FUZZ_MAX_BYTES))
    monkeypatch.setattr(limits, "MAX_BYTES", None)
    return FUZZ_MAX_BYTES


@pytest.fixture(autouse=True)
def _guard_fuzz_modules(request):
    """Apply :func:`small_size_limit` to every test of the fuzz/robustness modules."""
    module = getattr(request.module, "__name__", "").rsplit(".", 1)[-1]
    if module.startswith(_GUARDED_MODULES):
        request.getfixturevalue("small_size_limit")
    yield


#: the whole run must stay below this resident peak (bytes); IMGIO_TEST_MAX_RSS overrides
MAX_PEAK_RSS = int(os.environ.get("IMGIO_TEST_MAX_RSS", 2 << 30))


def peak_rss() -> dict[str, int]:
    """Resident peaks in bytes: this pytest process, and its largest reaped child.

    ``self``: ``VmHWM`` of /proc/self/status (``ru_maxrss`` elsewhere), the
    high-water mark of the pytest process itself.  ``children``: ``ru_maxrss``
    of ``RUSAGE_CHILDREN``, the largest peak of any child process that has
    been waited for (subprocess tests, multiprocessing and dask/distributed
    workers once they are joined); children still running are not counted,
    and the peaks of different processes are not added up.
    """
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: KiB on Linux
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    own = int(line.split()[1]) * 1024
    except OSError:
        pass
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale
    return {"self": own, "children": children}


def pytest_sessionfinish(session, exitstatus):
    peaks = peak_rss()
    session.config._imgio_peaks = peaks
    if max(peaks.values()) > MAX_PEAK_RSS and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        session.config._imgio_peak_failed = True


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    peaks = getattr(config, "_imgio_peaks", None)
    if not peaks:
        return
    text = (f"imgio peak resident memory: pytest {peaks['self'] / 2**20:.0f} MiB, largest "
            f"child {peaks['children'] / 2**20:.0f} MiB (limit {MAX_PEAK_RSS / 2**20:.0f} MiB)")
    if getattr(config, "_imgio_peak_failed", False):
        terminalreporter.write_line("FAILED: " + text, red=True)
    else:
        terminalreporter.write_line(text)
