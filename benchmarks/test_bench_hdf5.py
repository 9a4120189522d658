"""HDF5: imgio against h5py at its best, reading and writing the same datasets.

Data: uint16 frames, microscopy-like (smooth background plus noise, about 2x
with gzip + shuffle), one frame per chunk, files in the page cache.  CI sizes
by default; ``IMGIO_BENCH_FULL=1`` uses the sizes of docs/performance.md.

Workloads (each a benchmark group, imgio against the peer's best setup):

* iterate uncompressed: ``imiter`` vs an h5py ``read_direct`` loop into one
  preallocated frame buffer;
* iterate gzip 4 + shuffle: ``imiter`` vs the same ``read_direct`` loop;
* write gzip 4 + shuffle: ``imwrite(compression="gzip")`` vs h5py
  ``create_dataset(data=..., compression="gzip", shuffle=True)`` with the same
  chunks;
* write uncompressed: ``imwrite`` vs h5py ``create_dataset`` + ``write_direct``;
* append: v2 ``get_writer().append_data`` per frame vs h5py growing a
  resizable dataset with the same chunks (``resize`` + ``write_direct`` per
  frame).

``python benchmarks/test_bench_hdf5.py [rounds]`` measures the same pairs side
by side in one process (interleaved, medians) and prints the ratios.
"""
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

import imgio.v2 as imageio_v2
import imgio.v3 as iio

FULL = os.environ.get("IMGIO_BENCH_FULL") == "1"
#: iterated datasets (16 MiB-ish frames at full size: (200, 1024, 1024) u2 = 400 MiB)
SHAPE = (200, 1024, 1024) if FULL else (32, 256, 256)
#: written datasets (gzip and uncompressed)
WSHAPE = (64, 1024, 1024) if FULL else (32, 256, 256)
#: appended frames
ASHAPE = (256, 512, 512) if FULL else (64, 256, 256)
#: rounds per benchmark (medians): CI sizes take milliseconds, so many rounds smooth the noise
ROUNDS = 5 if FULL else 25
WROUNDS = 5 if FULL else 11
LEVEL = 4


def _frames(shape, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[1], : shape[2]]
    base = (1000 + 300 * np.sin(yy / 50.0) * np.cos(xx / 70.0)).astype(np.float64)
    out = np.empty(shape, np.uint16)
    for i in range(shape[0]):
        out[i] = base + rng.normal(0, 20, shape[1:])
    return out


def _make(path, compression, shape=SHAPE):
    with h5py.File(path, "w") as f:
        kw = dict(compression="gzip", compression_opts=LEVEL, shuffle=True) if compression else {}
        ds = f.create_dataset("data", shape=shape, dtype=np.uint16, chunks=(1,) + shape[1:], **kw)
        data = _frames(shape)
        for i in range(shape[0]):
            ds[i] = data[i]
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


@pytest.fixture(scope="module")
def wdata():
    return _frames(WSHAPE, 1)


@pytest.fixture(scope="module")
def adata():
    return _frames(ASHAPE, 2)


# -- the workloads (shared by pytest-benchmark and the side-by-side runner) -----------------
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


def _imgio_write_gzip(path, arr):
    iio.imwrite(path, arr, compression="gzip", compression_opts=LEVEL)
    return arr.shape[0]


def _h5py_write_gzip(path, arr):
    with h5py.File(path, "w") as f:
        f.create_dataset("data", data=arr, chunks=(1,) + arr.shape[1:], compression="gzip",
                         compression_opts=LEVEL, shuffle=True)
    return arr.shape[0]


def _imgio_write_raw(path, arr):
    iio.imwrite(path, arr)
    return arr.shape[0]


def _h5py_write_raw(path, arr):
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("data", shape=arr.shape, dtype=arr.dtype,
                              chunks=(1,) + arr.shape[1:])
        ds.write_direct(arr)
    return arr.shape[0]


def _imgio_append(path, arr):
    with imageio_v2.get_writer(path) as w:
        for frame in arr:
            w.append_data(frame)
    return arr.shape[0]


def _h5py_append(path, arr):
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("data", shape=(0,) + arr.shape[1:], maxshape=(None,) + arr.shape[1:],
                              dtype=arr.dtype, chunks=(1,) + arr.shape[1:])
        for i, frame in enumerate(arr):
            ds.resize(i + 1, axis=0)
            ds.write_direct(frame, dest_sel=np.s_[i])
    return arr.shape[0]


# -- reads ----------------------------------------------------------------------------------
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
def test_h5py_read_direct_loop_gzip(benchmark, gzip_file, record_peak):
    record_peak(_h5py_read_direct, gzip_file)
    assert benchmark.pedantic(_h5py_read_direct, (gzip_file,), rounds=ROUNDS) == SHAPE[0]


# -- writes ---------------------------------------------------------------------------------
@pytest.mark.benchmark(group="hdf5 write gzip4+shuffle u2")
def test_imgio_write_hdf5_gzip(benchmark, wdata, tmp_path):
    assert benchmark.pedantic(_imgio_write_gzip, (tmp_path / "w.h5", wdata),
                              rounds=WROUNDS) == WSHAPE[0]


@pytest.mark.benchmark(group="hdf5 write gzip4+shuffle u2")
def test_h5py_write_hdf5_gzip(benchmark, wdata, tmp_path):
    assert benchmark.pedantic(_h5py_write_gzip, (tmp_path / "w.h5", wdata),
                              rounds=WROUNDS) == WSHAPE[0]


@pytest.mark.benchmark(group="hdf5 write uncompressed u2")
def test_imgio_write_hdf5_uncompressed(benchmark, wdata, tmp_path):
    assert benchmark.pedantic(_imgio_write_raw, (tmp_path / "w.h5", wdata),
                              rounds=WROUNDS) == WSHAPE[0]


@pytest.mark.benchmark(group="hdf5 write uncompressed u2")
def test_h5py_write_direct_hdf5_uncompressed(benchmark, wdata, tmp_path):
    assert benchmark.pedantic(_h5py_write_raw, (tmp_path / "w.h5", wdata),
                              rounds=WROUNDS) == WSHAPE[0]


@pytest.mark.benchmark(group="hdf5 append u2")
def test_imgio_append_hdf5(benchmark, adata, tmp_path):
    assert benchmark.pedantic(_imgio_append, (tmp_path / "a.h5", adata),
                              rounds=WROUNDS) == ASHAPE[0]


@pytest.mark.benchmark(group="hdf5 append u2")
def test_h5py_append_hdf5(benchmark, adata, tmp_path):
    assert benchmark.pedantic(_h5py_append, (tmp_path / "a.h5", adata),
                              rounds=WROUNDS) == ASHAPE[0]


# -- the benchmarks measure what they claim ------------------------------------------------
def test_same_frames_as_h5py(raw_file, gzip_file):
    for path in (raw_file, gzip_file):
        with h5py.File(path, "r") as f:
            for i, frame in enumerate(iio.imiter(path)):
                if i % 7 == 0:
                    np.testing.assert_array_equal(frame, f["data"][i])


def test_written_files_match_h5py(wdata, adata, tmp_path):
    """Same arrays back through h5py, same filters; gzip no larger than h5py's."""
    mine, theirs = tmp_path / "m.h5", tmp_path / "p.h5"
    _imgio_write_gzip(mine, wdata)
    _h5py_write_gzip(theirs, wdata)
    with h5py.File(mine, "r") as f:
        ds = f["data"]
        assert (ds.compression, ds.compression_opts, ds.shuffle) == ("gzip", LEVEL, True)
        assert ds.chunks == (1,) + WSHAPE[1:]
        np.testing.assert_array_equal(ds[...], wdata)
    assert os.path.getsize(mine) <= os.path.getsize(theirs)
    _imgio_append(mine, adata)
    with h5py.File(mine, "r") as f:
        np.testing.assert_array_equal(f["data"][...], adata)


# -- side by side ---------------------------------------------------------------------------
def _pairs(tmp: Path):
    raw = _make(tmp / "raw.h5", False)
    gz = _make(tmp / "gzip.h5", True)
    w, a = _frames(WSHAPE, 1), _frames(ASHAPE, 2)
    return {
        "iterate uncompressed": (lambda: _imgio_iter(raw), lambda: _h5py_read_direct(raw)),
        "iterate gzip": (lambda: _imgio_iter(gz), lambda: _h5py_read_direct(gz)),
        "write gzip": (lambda: _imgio_write_gzip(tmp / "wm.h5", w),
                       lambda: _h5py_write_gzip(tmp / "wp.h5", w)),
        "write uncompressed": (lambda: _imgio_write_raw(tmp / "rm.h5", w),
                               lambda: _h5py_write_raw(tmp / "rp.h5", w)),
        "append": (lambda: _imgio_append(tmp / "am.h5", a), lambda: _h5py_append(tmp / "ap.h5", a)),
        # the same peers made atomic (temporary file + os.replace, as imgio commits)
        "write uncompr. atomic": (lambda: _imgio_write_raw(tmp / "rm.h5", w),
                                  lambda: _atomic(_h5py_write_raw, tmp / "rp.h5", w)),
        "append atomic": (lambda: _imgio_append(tmp / "am.h5", a),
                          lambda: _atomic(_h5py_append, tmp / "ap.h5", a)),
    }


def _atomic(fn, path, arr):
    tmp = Path(str(path) + ".tmp")
    fn(tmp, arr)
    if os.environ.get("IMGIO_DURABLE", "1") not in ("0", "false", "no"):
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    os.replace(tmp, path)


def main(rounds: int = 7) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for name, (mine, peer) in _pairs(Path(tmp)).items():
            mine(), peer()  # warm up
            tm, tp = [], []
            for _ in range(rounds):
                for fn, ts in ((mine, tm), (peer, tp)):
                    t0 = time.perf_counter()
                    fn()
                    ts.append(time.perf_counter() - t0)
            m, p = statistics.median(tm), statistics.median(tp)
            print(f"{name:22s} median imgio {m * 1e3:8.2f} ms  h5py {p * 1e3:8.2f} ms  "
                  f"ratio {m / p:.3f} | min ratio {min(tm) / min(tp):.3f}")
        for a, b in (("wm.h5", "wp.h5"),):
            print(f"gzip file size: imgio {os.path.getsize(Path(tmp) / a)} bytes, "
                  f"h5py {os.path.getsize(Path(tmp) / b)} bytes")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
