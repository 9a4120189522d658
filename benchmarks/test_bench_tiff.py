"""Reading TIFF volumes: imgio against imageio, tifffile and raw NumPy reads.

Sizes are small by default so that ``pytest benchmarks --benchmark-disable``
runs every case once in seconds; ``IMGIO_BENCH_FULL=1`` uses the sizes of the
targets (a 256 x 1024 x 1024 uint16 volume, 512 MiB):

* single uncompressed multi-page file: imgio no slower than ``np.fromfile``
  into a fresh array (aim 0.75x), with ``out=`` within 1.15x of ``readinto``;
  peak memory <= 1.1x the volume;
* folder of 256 single-slice files: >= 2.5x faster than a loop of
  ``imageio.v2.imread`` + ``np.stack``, within 1.5x of the ``readinto`` floor;
* zlib stack of 64 slices: >= 1.6x faster than ``imageio.v2.volread``, and
  against tifffile at its best (``maxworkers`` = every core), with and
  without the horizontal predictor.

Compare the groups with ``pytest benchmarks/test_bench_tiff.py
--benchmark-group-by=group --benchmark-columns=median,min,rounds``.
"""
import os
import tracemalloc

import numpy as np
import pytest
import tifffile

import imgio.v3 as iio

FULL = os.environ.get("IMGIO_BENCH_FULL") == "1"
VOLUME = (256, 1024, 1024) if FULL else (64, 512, 512)
ZLIB = (64, 1024, 1024) if FULL else (16, 512, 512)

imageio_v2 = pytest.importorskip("imageio.v2")


def _volume(shape, seed=0):
    rng = np.random.default_rng(seed)
    # structured, compressible pixels (what a microscope gives), generated cheaply
    base = rng.integers(0, 4096, shape[1:], dtype=np.uint16)
    vol = np.empty(shape, np.uint16)
    for z in range(shape[0]):
        np.add(base, z, out=vol[z])
    return vol


def _volread():
    try:
        import imgio.v2 as v2
        return v2.volread
    except ImportError:  # pragma: no cover - before the v2 API landed
        return iio.imread


def _offset(path):
    with tifffile.TiffFile(path) as tif:
        return tif.series[0].dataoffset


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    path = tmp_path_factory.mktemp("single") / "volume.tif"
    vol = _volume(VOLUME)
    tifffile.imwrite(path, vol, photometric="minisblack")
    np.fromfile(path, np.uint8)  # warm the page cache
    return str(path), vol, _offset(path)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    directory = tmp_path_factory.mktemp("folder")
    vol = _volume(VOLUME, seed=1)
    files = []
    for i, plane in enumerate(vol):
        path = directory / f"slice_{i}.tif"
        tifffile.imwrite(path, plane, photometric="minisblack")
        files.append(str(path))
    for f in files:
        np.fromfile(f, np.uint8)
    return str(directory), files, vol


@pytest.fixture(scope="module")
def zlib_pred_stack(tmp_path_factory):
    path = tmp_path_factory.mktemp("zlibpred") / "zlib_pred.tif"
    vol = _volume(ZLIB, seed=3)
    tifffile.imwrite(path, vol, photometric="minisblack", compression="zlib", predictor=2)
    np.fromfile(path, np.uint8)
    return str(path), vol


@pytest.fixture(scope="module")
def zlib_stack(tmp_path_factory):
    path = tmp_path_factory.mktemp("zlib") / "zlib.tif"
    vol = _volume(ZLIB, seed=2)
    tifffile.imwrite(path, vol, photometric="minisblack", compression="zlib")
    np.fromfile(path, np.uint8)
    return str(path), vol


# -- single uncompressed multi-page file -------------------------------------------------
@pytest.mark.benchmark(group="single file u2, fresh array")
def test_single_imgio_volread(benchmark, single, record_peak):
    path, vol, _ = single
    volread = _volread()
    record_peak(volread, path)
    got = benchmark(volread, path)
    assert got.shape == vol.shape


@pytest.mark.benchmark(group="single file u2, fresh array")
def test_single_imgio_v3_imread(benchmark, single, record_peak):
    path, vol, _ = single
    record_peak(iio.imread, path)
    got = benchmark(iio.imread, path)
    np.testing.assert_array_equal(got[-1], vol[-1])


@pytest.mark.benchmark(group="single file u2, fresh array")
def test_single_tifffile_imread(benchmark, single, record_peak):
    path, vol, _ = single
    record_peak(tifffile.imread, path)
    got = benchmark(tifffile.imread, path)
    assert got.shape == vol.shape


@pytest.mark.benchmark(group="single file u2, fresh array")
def test_single_imageio_volread(benchmark, single, record_peak):
    path, vol, _ = single
    record_peak(imageio_v2.volread, path)
    got = benchmark(imageio_v2.volread, path)
    assert got.shape == vol.shape


@pytest.mark.benchmark(group="single file u2, fresh array")
def test_single_numpy_fromfile(benchmark, single, record_peak):
    path, vol, offset = single
    record_peak(np.fromfile, path, dtype=np.uint16, count=vol.size, offset=offset)
    got = benchmark(np.fromfile, path, dtype=np.uint16, count=vol.size, offset=offset)
    assert got.size == vol.size


@pytest.mark.benchmark(group="single file u2, into out=")
def test_single_imgio_out(benchmark, single, record_peak):
    path, vol, _ = single
    out = np.empty_like(vol)

    def read():
        with iio.imopen(path, "r") as f:
            return f.read(out=out)

    record_peak(read)
    benchmark(read)
    np.testing.assert_array_equal(out[-1], vol[-1])


@pytest.mark.benchmark(group="single file u2, into out=")
def test_single_readinto_floor(benchmark, single, record_peak):
    path, vol, offset = single
    out = np.empty_like(vol)

    def read():
        with open(path, "rb", buffering=0) as fh:
            fh.seek(offset)
            fh.readinto(memoryview(out).cast("B"))

    record_peak(read)
    benchmark(read)
    np.testing.assert_array_equal(out[-1], vol[-1])


def test_single_peak_memory(single):
    """imgio's peak allocation while reading is one volume (+10%)."""
    path, vol, _ = single
    tracemalloc.start()
    try:
        got = iio.imread(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got.shape == vol.shape
    assert peak <= 1.1 * vol.nbytes, f"peak {peak / vol.nbytes:.2f}x the volume"


# -- folder of single-slice files ---------------------------------------------------------
@pytest.mark.benchmark(group="folder of slices u2")
def test_folder_imgio(benchmark, folder, record_peak):
    directory, _, vol = folder
    record_peak(iio.imread, directory)
    got = benchmark(iio.imread, directory)
    np.testing.assert_array_equal(got[-1], vol[-1])


@pytest.mark.benchmark(group="folder of slices u2")
def test_folder_imgio_volread(benchmark, folder, record_peak):
    directory, _, vol = folder
    record_peak(_volread(), directory)
    got = benchmark(_volread(), directory)
    assert got.shape == vol.shape


@pytest.mark.benchmark(group="folder of slices u2")
def test_folder_imageio_loop_stack(benchmark, folder, record_peak):
    _, files, vol = folder
    record_peak(lambda: np.stack([imageio_v2.imread(f) for f in files]))
    got = benchmark(lambda: np.stack([imageio_v2.imread(f) for f in files]))
    assert got.shape == vol.shape


@pytest.mark.benchmark(group="folder of slices u2")
def test_folder_readinto_floor(benchmark, folder, record_peak):
    _, files, vol = folder
    offsets = [_offset(f) for f in files]

    def read():
        out = np.empty_like(vol)
        for f, off, plane in zip(files, offsets, out):
            with open(f, "rb", buffering=0) as fh:
                fh.seek(off)
                fh.readinto(memoryview(plane).cast("B"))
        return out

    record_peak(read)
    got = benchmark(read)
    np.testing.assert_array_equal(got[-1], vol[-1])


def test_folder_peak_memory(folder):
    directory, _, vol = folder
    tracemalloc.start()
    try:
        got = iio.imread(directory)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got.shape == vol.shape
    assert peak <= 1.1 * vol.nbytes + (1 << 20), f"peak {peak / vol.nbytes:.2f}x the volume"


# -- zlib-compressed stack -----------------------------------------------------------------
@pytest.mark.benchmark(group="zlib stack u2")
def test_zlib_imgio(benchmark, zlib_stack, record_peak):
    path, vol = zlib_stack
    record_peak(_volread(), path)
    got = benchmark(_volread(), path)
    np.testing.assert_array_equal(got[-1], vol[-1])


@pytest.mark.benchmark(group="zlib stack u2")
def test_zlib_imageio_volread(benchmark, zlib_stack, record_peak):
    path, vol = zlib_stack
    record_peak(imageio_v2.volread, path)
    got = benchmark(imageio_v2.volread, path)
    assert got.shape == vol.shape


@pytest.mark.benchmark(group="zlib stack u2")
def test_zlib_tifffile(benchmark, zlib_stack, record_peak):
    path, vol = zlib_stack
    record_peak(tifffile.imread, path)
    got = benchmark(tifffile.imread, path)
    assert got.shape == vol.shape


#: tifffile at its best: decoding on every core
_ALL_CORES = os.cpu_count() or 1


@pytest.mark.benchmark(group="zlib stack u2")
def test_zlib_tifffile_all_cores(benchmark, zlib_stack, record_peak):
    path, vol = zlib_stack
    record_peak(tifffile.imread, path, maxworkers=_ALL_CORES)
    got = benchmark(tifffile.imread, path, maxworkers=_ALL_CORES)
    assert got.shape == vol.shape


@pytest.mark.benchmark(group="zlib+predictor stack u2")
def test_zlib_pred_imgio(benchmark, zlib_pred_stack, record_peak):
    path, vol = zlib_pred_stack
    record_peak(_volread(), path)
    got = benchmark(_volread(), path)
    np.testing.assert_array_equal(got[-1], vol[-1])


@pytest.mark.benchmark(group="zlib+predictor stack u2")
def test_zlib_pred_tifffile_all_cores(benchmark, zlib_pred_stack, record_peak):
    path, vol = zlib_pred_stack
    record_peak(tifffile.imread, path, maxworkers=_ALL_CORES)
    got = benchmark(tifffile.imread, path, maxworkers=_ALL_CORES)
    assert got.shape == vol.shape
