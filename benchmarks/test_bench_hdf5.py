"""Iterating an HDF5 series: imgio's imiter against plain h5py loops.

Data: uint16 frames, chunked one frame per chunk, file in the page cache.
Default size is small so ``pytest benchmarks --benchmark-disable`` stays fast;
``IMGIO_BENCH_FULL=1`` uses the target size (200, 1024, 1024).

Targets: uncompressed >= 1.5x faster than an h5py ``read_direct`` loop into one
buffer; gzip level 4 + shuffle >= 3x faster than an h5py ``dataset[i]`` loop.
"""
import os

import h5py
import numpy as np
import pytest

import imgio.v3 as iio

FULL = os.environ.get("IMGIO_BENCH_FULL") == "1"
SHAPE = (200, 1024, 1024) if FULL else (16, 128, 128)
ROUNDS = 5 if FULL else 1


def _make(path, compression):
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        kw = dict(compression="gzip", compression_opts=4, shuffle=True) if compression else {}
        ds = f.create_dataset("data", shape=SHAPE, dtype=np.uint16, chunks=(1,) + SHAPE[1:], **kw)
        # microscopy-like: smooth background plus noise (compresses about 2x with shuffle)
        yy, xx = np.mgrid[: SHAPE[1], : SHAPE[2]]
        base = (1000 + 300 * np.sin(yy / 50.0) * np.cos(xx / 70.0)).astype(np.float64)
        for i in range(SHAPE[0]):
            ds[i] = (base + rng.normal(0, 20, SHAPE[1:])).astype(np.uint16)
    with open(path, "rb") as fh:  # warm the page cache
        while fh.read(1 << 24):
            pass
    return path


@pytest.fixture(scope="module")
def raw_file(tmp_path_factory):
    return _make(tmp_path_factory.mktemp("h5") / "raw.h5", compression=False)


@pytest.fixture(scope="module")
def gzip_file(tmp_path_factory):
    return _make(tmp_path_factory.mktemp("h5") / "gzip.h5", compression=True)


def _imgio_iter(path):
    n = 0
    for frame in iio.imiter(path):
        n += frame.shape[0] > 0
    return n


def _h5py_read_direct(path):
    with h5py.File(path, "r") as f:
        ds = f["data"]
        buf = np.empty(ds.shape[1:], ds.dtype)
        for i in range(ds.shape[0]):
            ds.read_direct(buf, np.s_[i])
        return ds.shape[0]


def _h5py_getitem(path):
    with h5py.File(path, "r") as f:
        ds = f["data"]
        n = 0
        for i in range(ds.shape[0]):
            n += ds[i].shape[0] > 0
        return n


@pytest.mark.benchmark(group="hdf5 iterate uncompressed u2")
def test_imgio_imiter_uncompressed(benchmark, raw_file, record_peak):
    record_peak(_imgio_iter, raw_file)
    assert benchmark.pedantic(_imgio_iter, (raw_file,), rounds=ROUNDS) == SHAPE[0]


@pytest.mark.benchmark(group="hdf5 iterate uncompressed u2")
def test_h5py_read_direct_loop_uncompressed(benchmark, raw_file, record_peak):
    record_peak(_h5py_read_direct, raw_file)
    assert benchmark.pedantic(_h5py_read_direct, (raw_file,), rounds=ROUNDS) == SHAPE[0]


@pytest.mark.benchmark(group="hdf5 iterate gzip4+shuffle u2")
def test_imgio_imiter_gzip(benchmark, gzip_file, record_peak):
    record_peak(_imgio_iter, gzip_file)
    assert benchmark.pedantic(_imgio_iter, (gzip_file,), rounds=ROUNDS) == SHAPE[0]


@pytest.mark.benchmark(group="hdf5 iterate gzip4+shuffle u2")
def test_h5py_getitem_loop_gzip(benchmark, gzip_file, record_peak):
    record_peak(_h5py_getitem, gzip_file)
    assert benchmark.pedantic(_h5py_getitem, (gzip_file,), rounds=ROUNDS) == SHAPE[0]


def test_same_frames_as_h5py(raw_file, gzip_file):
    for path in (raw_file, gzip_file):
        with h5py.File(path, "r") as f:
            for i, frame in enumerate(iio.imiter(path)):
                if i % 7 == 0:
                    np.testing.assert_array_equal(frame, f["data"][i])
