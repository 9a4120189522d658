"""A folder of small single-page TIFFs: the Cython fast path against its peers.

Per file (group "tiff folder per-file"): ``imgio.plugins.tiff.fastpath.read_simple``,
``tifffile.imread``, ``imageio.v2.imread``, ``imgio.v3.imread`` /
``imgio.v2.imread`` (which reach the fast path through the TIFF plugin's
seam) and the floor: ``open`` + ``readinto`` of the known pixel bytes.
Each benchmark reads the whole folder once per round; divide by the file
count (``extra_info["files"]``) for per-file times.

Folder into one volume (group "tiff folder -> volume"): read_simple with
``out=`` slices in a 2-thread pool against the raw floor, sequential and in
2 threads.

Default: 200 files (quick; CI runs ``--benchmark-disable``).  The full
2,000 x 256 x 256 uint16 set: ``IMGIO_BENCH_FULL=1 pytest benchmarks/test_bench_fasttiff.py``.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import tifffile

from imgio.plugins.tiff import fastpath as _fasttiff

N_FILES = 2000 if os.environ.get("IMGIO_BENCH_FULL") == "1" else 200
SHAPE = (256, 256)
DTYPE = np.dtype("u2")
GROUP = f"tiff folder per-file ({N_FILES} x 256x256 u2)"
VGROUP = f"tiff folder -> volume ({N_FILES} x 256x256 u2)"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("slices")
    rng = np.random.default_rng(0)
    paths = []
    for i in range(N_FILES):
        p = str(root / f"slice_{i:05d}.tif")
        tifffile.imwrite(p, rng.integers(0, 4096, SHAPE, dtype=DTYPE))
        paths.append(p)
    with tifffile.TiffFile(paths[0]) as tif:
        offset = tif.pages[0].dataoffsets[0]
    return paths, offset


def _run(benchmark, fn, paths, record_peak):
    record_peak(fn)  # one un-timed call: peak memory into extra_info
    benchmark.extra_info["files"] = len(paths)
    rounds = 1 if benchmark.disabled else 5
    result = benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=1)
    benchmark.extra_info["us_per_file"] = (
        None if benchmark.disabled else benchmark.stats.stats.median / len(paths) * 1e6)
    return result


def _raw_one(path, offset, buf):
    with open(path, "rb", buffering=0) as f:
        f.seek(offset)
        f.readinto(buf)


@pytest.mark.benchmark(group=GROUP)
def test_raw_readinto_floor(benchmark, folder, record_peak):
    paths, offset = folder
    arr = np.empty(SHAPE, DTYPE)
    view = memoryview(arr).cast("B")

    def run():
        for p in paths:
            _raw_one(p, offset, view)
    _run(benchmark, run, paths, record_peak)


@pytest.mark.benchmark(group=GROUP)
def test_imgio_read_simple(benchmark, folder, record_peak):
    paths, _ = folder

    def run():
        misses = 0
        for p in paths:
            if _fasttiff.read_simple(p) is None:
                misses += 1
        return misses
    misses = _run(benchmark, run, paths, record_peak)
    benchmark.extra_info["misses"] = misses
    assert misses == 0


@pytest.mark.benchmark(group=GROUP)
def test_imgio_read_simple_out(benchmark, folder, record_peak):
    paths, _ = folder
    out = np.empty(SHAPE, DTYPE)

    def run():
        for p in paths:
            _fasttiff.read_simple(p, out=out)
    _run(benchmark, run, paths, record_peak)


@pytest.mark.benchmark(group=GROUP)
def test_tifffile_imread(benchmark, folder, record_peak):
    paths, _ = folder

    def run():
        for p in paths:
            tifffile.imread(p)
    _run(benchmark, run, paths, record_peak)


@pytest.mark.benchmark(group=GROUP)
def test_imageio_v2_imread(benchmark, folder, record_peak):
    iio2 = pytest.importorskip("imageio.v2")
    paths, _ = folder

    def run():
        for p in paths:
            iio2.imread(p)
    _run(benchmark, run, paths, record_peak)


@pytest.mark.benchmark(group=GROUP)
def test_imgio_v3_imread(benchmark, folder, record_peak):
    from imgio import v3
    paths, _ = folder
    first = v3.imread(paths[0])
    assert first.shape == SHAPE and first.dtype == DTYPE

    def run():
        for p in paths:
            v3.imread(p)
    _run(benchmark, run, paths, record_peak)


@pytest.mark.benchmark(group=GROUP)
def test_imgio_v2_imread(benchmark, folder, record_peak):
    v2 = pytest.importorskip("imgio.v2")
    paths, _ = folder

    def run():
        for p in paths:
            v2.imread(p)
    _run(benchmark, run, paths, record_peak)


# -- a folder into one volume ---------------------------------------------------------
@pytest.mark.benchmark(group=VGROUP)
def test_volume_raw_floor_sequential(benchmark, folder, record_peak):
    paths, offset = folder
    vol = np.empty((len(paths),) + SHAPE, DTYPE)
    views = [memoryview(vol[i]).cast("B") for i in range(len(paths))]

    def run():
        for p, v in zip(paths, views):
            _raw_one(p, offset, v)
    _run(benchmark, run, paths, record_peak)


@pytest.mark.benchmark(group=VGROUP)
def test_volume_raw_floor_2threads(benchmark, folder, record_peak):
    paths, offset = folder
    vol = np.empty((len(paths),) + SHAPE, DTYPE)
    views = [memoryview(vol[i]).cast("B") for i in range(len(paths))]
    with ThreadPoolExecutor(2) as pool:
        def run():
            list(pool.map(lambda pv: _raw_one(pv[0], offset, pv[1]), zip(paths, views)))
        _run(benchmark, run, paths, record_peak)


@pytest.mark.benchmark(group=VGROUP)
def test_volume_read_simple_2threads(benchmark, folder, record_peak):
    paths, _ = folder
    vol = np.empty((len(paths),) + SHAPE, DTYPE)
    with ThreadPoolExecutor(2) as pool:
        def run():
            got = list(pool.map(lambda i: _fasttiff.read_simple(paths[i], out=vol[i]),
                                range(len(paths))))
            return sum(g is None for g in got)
        misses = _run(benchmark, run, paths, record_peak)
    assert misses == 0
    np.testing.assert_array_equal(vol[-1], tifffile.imread(paths[-1]))


@pytest.mark.benchmark(group=VGROUP)
def test_volume_tifffile_2threads(benchmark, folder, record_peak):
    paths, _ = folder
    vol = np.empty((len(paths),) + SHAPE, DTYPE)
    with ThreadPoolExecutor(2) as pool:
        def run():
            list(pool.map(lambda i: tifffile.imread(paths[i], out=vol[i]),
                          range(len(paths))))
        _run(benchmark, run, paths, record_peak)


@pytest.mark.benchmark(group=VGROUP)
def test_volume_read_simple_sequential(benchmark, folder, record_peak):
    paths, _ = folder
    vol = np.empty((len(paths),) + SHAPE, DTYPE)

    def run():
        return sum(_fasttiff.read_simple(p, out=vol[i]) is None for i, p in enumerate(paths))
    assert _run(benchmark, run, paths, record_peak) == 0
