"""HDF5 writes with h5py as the oracle: gzip chunks compressed by imgio (libdeflate,
``write_direct_chunk``) must read back through HDF5's own filter pipeline exactly,
with the filters declared as asked; appended streams likewise."""
import os

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import imgio.v2 as imageio_v2
import imgio.v3 as iio
from imgio.plugins.hdf5 import chunks as h5chunks, writer

DTYPES = ["u1", "i1", "<u2", ">u2", "<i2", "<u4", ">i4", "<i8", "<f4", ">f4", "<f8", ">f8",
          "<c8", "<c16", "?"]


def _array(draw, shape, dtype):
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if dtype.kind == "b":
        return rng.integers(0, 2, shape).astype(bool)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        # mostly small values (compressible), some full-range
        hi = min(int(info.max), 300) if draw(st.booleans()) else int(info.max)
        return rng.integers(max(int(info.min), -hi), hi, shape, endpoint=True).astype(dtype)
    data = rng.normal(0, 100, shape)
    if dtype.kind == "c":
        data = data + 1j * rng.normal(0, 100, shape)
    return data.astype(dtype)


@st.composite
def gzip_case(draw):
    ndim = draw(st.integers(1, 4))
    shape = tuple(draw(st.lists(st.integers(1, 9), min_size=ndim, max_size=ndim)))
    chunks = tuple(draw(st.integers(1, s)) for s in shape)  # edge chunks are partial
    dtype = draw(st.sampled_from(DTYPES))
    shuffle = draw(st.booleans())
    level = draw(st.integers(0, 9))
    return _array(draw, shape, dtype), chunks, shuffle, level


def _check_filters(ds, level, shuffle):
    assert ds.compression == "gzip"
    assert ds.compression_opts == level
    assert ds.shuffle == shuffle


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(gzip_case())
def test_gzip_write_reads_back_through_h5py(tmp_path, case):
    arr, chunks, shuffle, level = case
    path = tmp_path / "g.h5"
    iio.imwrite(path, arr, compression="gzip", compression_opts=level, shuffle=shuffle,
                chunks=chunks)
    with h5py.File(path, "r") as f:
        ds = f["data"]
        _check_filters(ds, level, shuffle)
        assert ds.chunks == chunks
        assert ds.dtype == arr.dtype
        np.testing.assert_array_equal(ds[...], arr)
        # every chunk is stored (written by imgio, not left to the fill value)
        assert ds.id.get_num_chunks() == int(np.prod([-(-s // c) for s, c in
                                                      zip(arr.shape, chunks)]))
    if arr.ndim >= 2:  # 1-D datasets are not images for imgio's reader
        np.testing.assert_array_equal(iio.imread(path), arr)


@pytest.mark.parametrize("dtype,shuffle,level", [
    ("<u2", True, 4), ("<f4", False, 1), (">i4", True, 9), ("u1", True, 6), ("<f8", False, 0)])
def test_gzip_write_threaded_matches_h5py(tmp_path, dtype, shuffle, level):
    """A dataset large enough to compress on the pool; no larger than h5py's file."""
    shape = (12, 384, 512)
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[: shape[1], : shape[2]]
    base = 1000 + 300 * np.sin(yy / 50.0) * np.cos(xx / 70.0)
    arr = (base + rng.normal(0, 20, shape)).astype(dtype)
    assert arr.nbytes >= writer._THREAD_BYTES or dtype == "u1"
    mine, theirs = tmp_path / "m.h5", tmp_path / "p.h5"
    iio.imwrite(mine, arr, compression="gzip", compression_opts=level, shuffle=shuffle)
    with h5py.File(theirs, "w") as f:
        f.create_dataset("data", data=arr, chunks=(1,) + shape[1:], compression="gzip",
                         compression_opts=level, shuffle=shuffle)
    with h5py.File(mine, "r") as f:
        ds = f["data"]
        _check_filters(ds, level, shuffle)
        assert ds.chunks == (1,) + shape[1:]
        np.testing.assert_array_equal(ds[...], arr)
    if level > 0:  # level 0 is stored, libdeflate's framing may differ by bytes
        assert os.path.getsize(mine) <= os.path.getsize(theirs)
    # and imgio's reader decodes these chunks on its pool (above its threshold)
    assert arr[0].nbytes >= h5chunks.THREAD_CHUNK_BYTES or dtype == "u1"
    np.testing.assert_array_equal(iio.imread(mine), arr)
    np.testing.assert_array_equal(np.stack(list(iio.imiter(theirs))), arr)


def test_gzip_write_large_u2_uses_pool(tmp_path, monkeypatch):
    """Above the threshold the chunks are compressed on the writer's pool."""
    arr = np.random.default_rng(2).integers(0, 2000, (20, 256, 512), dtype=np.uint16)
    assert arr.nbytes >= writer._THREAD_BYTES
    calls = []
    real = writer.DirectChunks.write

    def spy(self, a, pool=None, origin=0):
        calls.append(pool is not None)
        return real(self, a, pool, origin)

    monkeypatch.setattr(writer.DirectChunks, "write", spy)
    iio.imwrite(tmp_path / "big.h5", arr, compression="gzip")
    assert calls == [True]
    with h5py.File(tmp_path / "big.h5", "r") as f:
        _check_filters(f["data"], 4, True)  # h5py's default level, shuffle on by default
        np.testing.assert_array_equal(f["data"][...], arr)


def test_gzip_level_as_compression_number(tmp_path):
    """``compression=7`` is h5py's spelling of gzip level 7."""
    arr = np.arange(2 * 30 * 40, dtype="<u2").reshape(2, 30, 40)
    iio.imwrite(tmp_path / "n.h5", arr, compression=7)
    with h5py.File(tmp_path / "n.h5", "r") as f:
        _check_filters(f["data"], 7, True)
        np.testing.assert_array_equal(f["data"][...], arr)


@pytest.mark.parametrize("options", [dict(fletcher32=True), dict(scaleoffset=0),
                                     dict(compression="lzf")])
def test_other_pipelines_are_written_by_hdf5(tmp_path, options):
    arr = np.random.default_rng(3).integers(0, 99, (3, 17, 19), dtype=np.int32)
    iio.imwrite(tmp_path / "o.h5", arr, **options)
    with h5py.File(tmp_path / "o.h5", "r") as f:
        np.testing.assert_array_equal(f["data"][...], arr)
        for key, value in options.items():
            assert getattr(f["data"], key) == value


@st.composite
def stream_case(draw):
    frame = tuple(draw(st.lists(st.integers(1, 12), min_size=1, max_size=3)))
    n = draw(st.integers(1, 20))
    dtype = draw(st.sampled_from(["u1", "<u2", ">i2", "<f4", "<f8", "?"]))
    compression = draw(st.sampled_from([None, "gzip"]))
    shuffle = draw(st.sampled_from([None, True, False]))
    chunks = draw(st.sampled_from([None, "frames2", "tiles"]))
    return (_array(draw, (n,) + frame, dtype), compression, shuffle, chunks,
            draw(st.integers(0, 9)))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(stream_case())
def test_append_streams_match_h5py(tmp_path, case):
    arr, compression, shuffle, chunks, level = case
    kw = {}
    if compression:
        kw.update(compression=compression, compression_opts=level)
    if shuffle is not None:
        kw["shuffle"] = shuffle
    if chunks == "frames2":
        kw["chunks"] = (2,) + arr.shape[1:]
    elif chunks == "tiles":
        kw["chunks"] = (1,) + tuple(max(1, s // 2) for s in arr.shape[1:])
    path = tmp_path / "s.h5"
    with iio.imopen(path, "w", plugin="hdf5") as plugin:
        for frame in arr:
            plugin.append(frame, **kw)
    with h5py.File(path, "r") as f:
        ds = f["data"]
        assert ds.maxshape == (None,) + arr.shape[1:]
        if compression:
            _check_filters(ds, level, True if shuffle is None else shuffle)
        np.testing.assert_array_equal(ds[...], arr)


def test_v2_append_data_many_gzip_frames(tmp_path):
    """More frames than are compressed at once: every one is stored, in order."""
    arr = np.random.default_rng(4).integers(0, 500, (3 * writer.cpu_workers() * 4 + 5, 64, 80),
                                            dtype=np.uint16)
    path = tmp_path / "v2.h5"
    with imageio_v2.get_writer(path, compression="gzip") as w:
        for frame in arr:
            w.append_data(frame)
    with h5py.File(path, "r") as f:
        _check_filters(f["data"], 4, True)
        np.testing.assert_array_equal(f["data"][...], arr)
    np.testing.assert_array_equal(np.stack(list(iio.imiter(path))), arr)


def test_append_uncompressed_whole_frames_stored_directly(tmp_path):
    arr = np.random.default_rng(5).integers(0, 500, (7, 33, 41)).astype(">u2")
    path = tmp_path / "raw.h5"
    with imageio_v2.get_writer(path) as w:
        for frame in arr:
            w.append_data(frame)
    with h5py.File(path, "r") as f:
        ds = f["data"]
        assert ds.compression is None and ds.chunks == (1, 33, 41) and ds.dtype == arr.dtype
        assert ds.id.get_num_chunks() == 7
        np.testing.assert_array_equal(ds[...], arr)


def test_append_gzip_frame_buffer_reused_by_caller(tmp_path):
    """Frames compress after append returns: a caller reusing its buffer must not
    change what was appended."""
    rng = np.random.default_rng(6)
    frames = rng.integers(0, 900, (9, 48, 64), dtype=np.uint16)
    path = tmp_path / "reuse.h5"
    for shuffle in (True, False):
        buf = np.empty(frames.shape[1:], frames.dtype)
        with iio.imopen(path, "w", plugin="hdf5") as plugin:
            for frame in frames:
                buf[...] = frame
                plugin.append(buf, compression="gzip", shuffle=shuffle)
                buf[...] = 0
        with h5py.File(path, "r") as f:
            np.testing.assert_array_equal(f["data"][...], frames)
