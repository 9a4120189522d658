"""Benchmarks: imgio and its peers on the same generated data, in the same run.

Conventions (``benchmarks/compare.py`` relies on them):

* each workload is one pytest-benchmark ``group``;
* each test is named ``test_<impl>_<what>`` where ``<impl>`` is ``imgio`` or a
  peer (``imageio``, ``tifffile``, ``h5py``, ``pillow``, ``numpy``, ``floor``);
* tests may record ``benchmark.extra_info["nbytes"]`` (bytes produced per
  call, for throughput) and ``benchmark.extra_info["peak_bytes"]`` (peak extra
  memory of one call, from :func:`peak_memory`).

``pytest benchmarks`` prints timings; CI runs ``pytest benchmarks
--benchmark-disable`` so every benchmark executes once and cannot rot.
Large sizes are behind ``IMGIO_BENCH_FULL=1`` (``compare.py --full``).

Rules for a workload that a target of ``thresholds.toml`` checks:

* the peer test measures the peer at its BEST setup for the same result
  (tifffile ``maxworkers=2`` / ``ioworkers=2``, h5py ``read_direct`` into a
  preallocated array, blockwise NumPy on all cores), and the target's
  ``peer_setup`` says what it is;
* the CI size (without ``IMGIO_BENCH_FULL``) is big enough that the workload,
  not start-up, is timed (a call of at least a few milliseconds, data larger
  than the caches, above any threading threshold of imgio or the peer), while
  the whole ``compare.py --quick`` stays within about 3 minutes on 2 cores;
* fixed ``pedantic`` rounds are at least 3 (a median of one round is noise).
"""
from __future__ import annotations

import os
import sys
import tracemalloc
from pathlib import Path

import pytest

# the repository root, so the shared helper modules import as ``tests.servers`` and
# ``tests.pairwise`` however pytest was started (appended: an installed imgio still wins)
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.append(_ROOT)

FULL = os.environ.get("IMGIO_BENCH_FULL") == "1"


def peak_memory(fn, *args, **kwargs) -> tuple[object, int]:
    """Run ``fn`` once and return ``(result, peak bytes allocated during the call)``.

    Uses tracemalloc, which sees NumPy's allocations (NumPy reports them to it)
    but not those made inside C libraries with their own allocators.
    """
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        result = fn(*args, **kwargs)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    return result, peak


@pytest.fixture
def record_peak(benchmark):
    """``record_peak(fn, *a)``: measure one call's peak memory into ``extra_info``."""
    def run(fn, *args, **kwargs):
        result, peak = peak_memory(fn, *args, **kwargs)
        benchmark.extra_info["peak_bytes"] = peak
        nbytes = getattr(result, "nbytes", None)
        if nbytes is not None:
            benchmark.extra_info["nbytes"] = int(nbytes)
        return result
    return run
