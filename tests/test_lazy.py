"""Lazy arrays and dask (issue 7): imgio.lazy against the eager imread, on the
threaded scheduler and on a real dask.distributed LocalCluster."""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import imgio
import imgio.v3 as iio
from imgio import errors
from imgio import lazyio as lz

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
h5py = pytest.importorskip("h5py")
tifffile = pytest.importorskip("tifffile")

RNG = np.random.default_rng(7)
STACK = RNG.integers(0, 60000, (12, 40, 24), dtype=np.uint16)
HYPER = RNG.integers(0, 250, (3, 4, 2, 16, 12), dtype=np.uint8)  # TZCYX


# -- generated files --------------------------------------------------------------------
@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("lazy")
    out = {}
    out["tiff"] = str(d / "stack.tif")
    tifffile.imwrite(out["tiff"], STACK)  # uncompressed, contiguous
    out["tiff_zlib"] = str(d / "stack_zlib.tif")
    tifffile.imwrite(out["tiff_zlib"], STACK, compression="zlib")
    out["imagej"] = str(d / "hyper.tif")
    tifffile.imwrite(out["imagej"], HYPER, imagej=True, metadata={"axes": "TZCYX"})
    out["ome"] = str(d / "hyper.ome.tif")
    tifffile.imwrite(out["ome"], HYPER, ome=True, metadata={"axes": "TZCYX"},
                     compression="zlib", tile=(16, 16))
    folder = d / "slices"
    folder.mkdir()
    for i, plane in enumerate(STACK):
        tifffile.imwrite(folder / f"z{i}.tif", plane)  # z2 sorts before z10
    out["folder"] = str(folder)
    out["glob"] = str(folder / "z*.tif")
    out["h5"] = str(d / "data.h5")
    with h5py.File(out["h5"], "w") as f:
        f.create_dataset("chunked", data=STACK, chunks=(3, 16, 8))
        f.create_dataset("contiguous", data=STACK)
        f.create_dataset("gzip", data=STACK, chunks=(2, 40, 24), compression="gzip")
        group = f.create_group("series")
        for i, plane in enumerate(STACK):
            group.create_dataset(str(i), data=plane)
    out["npy"] = str(d / "stack.npy")
    np.save(out["npy"], STACK)
    out["npy_f"] = str(d / "fortran.npy")
    np.save(out["npy_f"], np.asfortranarray(STACK))
    return out


#: (file key, keywords): every format and layout the issue lists
CASES = {
    "tiff": ("tiff", {}),
    "tiff-zlib": ("tiff_zlib", {}),
    "imagej": ("imagej", {}),
    "ome": ("ome", {}),
    "folder": ("folder", {}),
    "glob": ("glob", {}),
    "h5-chunked": ("h5", {"dataset": "chunked"}),
    "h5-contiguous": ("h5", {"dataset": "contiguous"}),
    "h5-gzip": ("h5", {"dataset": "gzip"}),
    "h5-series": ("h5", {"dataset": "series"}),
    "npy": ("npy", {}),
    "npy-fortran": ("npy_f", {}),
}


@pytest.fixture(params=sorted(CASES))
def case(request, files):
    key, kw = CASES[request.param]
    return files[key], kw


@pytest.fixture
def small_chunks():
    """Native chunks of at most 2 KiB, so even small files make many chunks."""
    with dask.config.set({"array.chunk-size": "2KiB"}):
        yield


@pytest.fixture(autouse=True)
def _release_handles():
    yield
    lz.clear_handle_cache()


# -- LazyArray ------------------------------------------------------------------------------
KEYS = [
    (),
    (0,),
    (-1,),
    (slice(2, 9, 3),),
    (slice(None, None, -2),),
    (Ellipsis, slice(3, 11)),
    (1, Ellipsis, slice(None, None, -3)),
    ([0, 5, 2],),
    "mask",
    (None, slice(1, 3)),
    (slice(5, 2),),
]


def test_lazy_equals_imread(case):
    path, kw = case
    eager = iio.imread(path, **kw)
    arr = imgio.lazy(path, **kw)
    assert isinstance(arr, imgio.LazyArray)
    assert (arr.shape, arr.dtype, arr.ndim, len(arr)) == (eager.shape, eager.dtype,
                                                           eager.ndim, len(eager))
    np.testing.assert_array_equal(np.asarray(arr), eager)
    for key in KEYS:
        if key == "mask":
            key = (Ellipsis, np.arange(eager.shape[-1]) % 3 == 1)
        try:
            expected = eager[key]
        except IndexError:
            with pytest.raises(IndexError):
                arr[key]
            continue
        got = arr[key]
        assert isinstance(got, np.ndarray)
        np.testing.assert_array_equal(got, expected, err_msg=repr(key))
    corner = (-1,) * eager.ndim
    assert arr[corner] == eager[corner] and arr[corner].shape == ()
    with pytest.raises(IndexError):
        arr[len(eager)]


def test_lazy_array_is_numpy_like(files):
    arr = imgio.lazy(files["imagej"])
    assert arr.axes == "TZCYX"
    assert arr.size == HYPER.size and arr.nbytes == HYPER.nbytes
    text = repr(arr)
    assert "LazyArray" in text and "(3, 4, 2, 16, 12)" in text and "uint8" in text \
        and "hyper.tif" in text and "TZCYX" in text
    np.testing.assert_array_equal(np.asarray(arr, dtype=np.float32), HYPER.astype(np.float32))
    np.testing.assert_array_equal(np.stack(list(arr)), HYPER)
    assert float(np.mean(arr)) == pytest.approx(HYPER.mean())
    clone = pickle.loads(pickle.dumps(arr))
    np.testing.assert_array_equal(clone[1, 2], HYPER[1, 2])
    with pytest.raises(IndexError):
        arr[0, 0, 0, 0, 0, 0]
    with pytest.raises(IndexError):
        arr[[0], [1]]


def test_lazy_index_selects_like_imread(files):
    arr = imgio.lazy(files["h5"], dataset="gzip", index=4)
    np.testing.assert_array_equal(np.asarray(arr), iio.imread(files["h5"], dataset="gzip", index=4))
    arr = imgio.lazy(files["folder"], index=10)
    np.testing.assert_array_equal(np.asarray(arr), STACK[10])
    arr = imgio.lazy(files["tiff"], index=...)
    np.testing.assert_array_equal(np.asarray(arr), iio.imread(files["tiff"], index=...))


def test_lazy_reads_only_what_is_indexed(tmp_path):
    """A damaged page breaks only the reads that touch it."""
    path = tmp_path / "damaged.tif"
    tifffile.imwrite(path, STACK, compression="zlib")
    with tifffile.TiffFile(path) as tif:
        offset = tif.pages[5].dataoffsets[0]
        count = tif.pages[5].databytecounts[0]
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(b"\xff" * count)
    arr = imgio.lazy(path)
    np.testing.assert_array_equal(arr[:5], STACK[:5])
    np.testing.assert_array_equal(arr[6:, 3], STACK[6:, 3])
    with pytest.raises(errors.CorruptFileError, match="damaged.tif"):
        arr[4:7]
    darr = imgio.to_dask(path, chunks=(1, -1, -1))
    assert int(darr[7:].sum().compute()) == int(STACK[7:].sum(dtype=np.uint64))


def test_lazy_needs_a_file_on_disk(files):
    with open(files["tiff"], "rb") as fh:
        data = fh.read()
    with pytest.raises(errors.FormatError, match="file on disk"):
        imgio.lazy(data)


# -- dask arrays --------------------------------------------------------------------------
def test_to_dask_equals_imread(case, small_chunks):
    path, kw = case
    eager = iio.imread(path, **kw)
    darr = imgio.to_dask(path, **kw)
    assert isinstance(darr, da.Array)
    assert darr.npartitions > 1
    assert (darr.shape, darr.dtype) == (eager.shape, eager.dtype)
    np.testing.assert_array_equal(darr.compute(), eager)
    np.testing.assert_array_equal(darr[2:7, ::2].compute(), eager[2:7, ::2])
    assert darr.sum(dtype="u8").compute() == eager.sum(dtype=np.uint64)


@pytest.mark.parametrize("chunks", ["native", "auto", (5, -1, 7), 4, {"Z": 5}, {0: 3, -1: 5}])
def test_to_dask_chunk_choices(files, chunks):
    darr = imgio.to_dask(files["tiff_zlib"], chunks=chunks)
    np.testing.assert_array_equal(darr.compute(), STACK)
    if chunks == (5, -1, 7):
        assert darr.chunks == ((5, 5, 2), (40,), (7, 7, 7, 3))
    if chunks == {"Z": 5}:  # tifffile calls a plain stack's first axis "Q"
        assert darr.chunks[0] == (5, 5, 2)


def test_chunks_by_axis_letter(files):
    darr = imgio.to_dask(files["imagej"], chunks={"Z": 1, "T": 2})
    assert darr.chunks[:3] == ((2, 1), (1, 1, 1, 1), (2,))
    np.testing.assert_array_equal(darr.compute(), HYPER)
    darr = imgio.to_dask(files["folder"], chunks={"Z": 5})
    assert darr.chunks[0] == (5, 5, 2)
    with pytest.raises(ValueError, match="axis 'Q'"):
        imgio.to_dask(files["imagej"], chunks={"Q": 2})
    with pytest.raises(ValueError, match="chunks must be"):
        imgio.to_dask(files["imagej"], chunks="big")


def test_native_chunks_follow_the_file(files, small_chunks):
    # TIFF: groups of whole pages along the first axis
    darr = imgio.to_dask(files["tiff_zlib"])
    assert darr.chunks[1:] == ((40,), (24,))
    assert len(darr.chunks[0]) > 1 and max(darr.chunks[0]) * 40 * 24 * 2 <= 2048
    # hyperstack: pages (YX) grouped innermost axis first
    darr = imgio.to_dask(files["imagej"])
    assert darr.chunks[-2:] == ((16,), (12,))
    # folder: one chunk per file
    darr = imgio.to_dask(files["folder"])
    assert darr.chunks == ((1,) * 12, (40,), (24,))
    # HDF5: every chunk boundary is a boundary of the dataset's chunks (3, 16, 8)
    darr = imgio.to_dask(files["h5"], dataset="chunked")
    for axis, native in enumerate((3, 16, 8)):
        bounds = np.cumsum(darr.chunks[axis])[:-1]
        assert all(b % native == 0 for b in bounds), darr.chunks
    # the default target merges a small file into one chunk
    with dask.config.set({"array.chunk-size": "128MiB"}):
        assert imgio.to_dask(files["h5"], dataset="chunked").npartitions == 1


def test_plugin_to_dask(files):
    with iio.imopen(files["imagej"], "r") as f:
        darr = f.to_dask(chunks={"T": 1})
    assert darr.chunks[0] == (1, 1, 1)
    np.testing.assert_array_equal(darr.compute(), HYPER)
    with iio.imopen(files["h5"], "r", plugin="hdf5") as f:
        darr = lz.plugin_to_dask(f, index=3, dataset="gzip")
    np.testing.assert_array_equal(darr.compute(), STACK[3])


def test_graph_pickles_without_handles(files, small_chunks):
    darr = (imgio.to_dask(files["tiff_zlib"]).astype("u8")
            + imgio.to_dask(files["h5"], dataset="gzip"))
    darr.compute()  # the handle cache now holds open files ...
    blob = pickle.dumps(darr)  # ... but the graph holds only paths
    assert len(blob) < 20000
    cloudpickle = pytest.importorskip("cloudpickle")
    assert pickle.loads(cloudpickle.dumps(darr)).name == darr.name
    code = textwrap.dedent("""
        import pickle, sys
        import numpy as np
        darr = pickle.loads(sys.stdin.buffer.read())
        print(int(darr.sum(dtype="u8").compute()))
    """)
    result = subprocess.run([sys.executable, "-c", code], input=blob, capture_output=True,
                            check=True, timeout=60)
    expected = 2 * STACK.sum(dtype=np.uint64)
    assert int(result.stdout) == expected


def test_names_are_deterministic(files, tmp_path):
    a = imgio.to_dask(files["tiff"])
    b = imgio.to_dask(files["tiff"])
    assert a.name == b.name
    assert imgio.to_dask(files["tiff"], chunks=(3, -1, -1)).name != a.name


def test_handle_cache_is_bounded_and_sees_new_files(tmp_path):
    paths = []
    for i in range(lz.HANDLE_CACHE_SIZE + 4):
        p = tmp_path / f"f{i}.tif"
        tifffile.imwrite(p, STACK[:2] + i)
        paths.append(p)
    for i, p in enumerate(paths):
        assert imgio.lazy(p)[1, 0, 0] == STACK[1, 0, 0] + i
    assert len(lz._HANDLES) == lz.HANDLE_CACHE_SIZE
    arr = imgio.lazy(paths[-1])
    tifffile.imwrite(paths[-1], STACK[:2] + 1000)  # same shape, new mtime and content
    os.utime(paths[-1], ns=(10**18, 10**18))
    assert arr[1, 0, 0] == STACK[1, 0, 0] + 1000
    lz.clear_handle_cache()
    assert len(lz._HANDLES) == 0


def _sum_u8(arr):
    return int(arr[...].sum(dtype=np.uint64)), len(lz._HANDLES)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_reopens_its_files(files):
    import multiprocessing
    arr = imgio.lazy(files["h5"], dataset="gzip")
    arr[0]  # the parent now caches an open HDF5 file
    assert len(lz._HANDLES) == 1
    with multiprocessing.get_context("fork").Pool(1) as pool:
        total, handles = pool.apply(_sum_u8, (arr,))
    assert total == STACK.sum(dtype=np.uint64)
    assert handles == 1  # its own handle, not the parent's


def test_threaded_reads_share_handles(files):
    """Many threads reading one compressed TIFF and one HDF5 file through the cache."""
    targets = [imgio.to_dask(files["tiff_zlib"], chunks=(1, 8, -1)),
               imgio.to_dask(files["h5"], dataset="gzip", chunks=(1, 8, -1)),
               imgio.to_dask(files["ome"], chunks={"T": 1, "Z": 1, "C": 1})]
    results = []

    def run():
        results.append(dask.compute(*targets, scheduler="threads", num_workers=8))

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3
    for tiff, h5, ome in results:
        np.testing.assert_array_equal(tiff, STACK)
        np.testing.assert_array_equal(h5, STACK)
        np.testing.assert_array_equal(ome, HYPER)


def test_without_dask_the_error_says_how_to_install(files):
    code = textwrap.dedent(f"""
        import sys
        for name in ("dask", "dask.array", "distributed"):
            sys.modules[name] = None   # import dask -> ImportError
        import numpy as np, imgio, imgio.v3 as iio
        from imgio.errors import BackendMissingError
        arr = imgio.lazy({files["tiff"]!r})          # LazyArray needs no dask
        assert arr[3, 2, 1] == arr.read()[3, 2, 1]
        for call in (lambda: imgio.to_dask({files["tiff"]!r}),
                     lambda: iio.imopen({files["tiff"]!r}, "r").to_dask(),
                     lambda: arr.to_dask()):
            try:
                call()
            except BackendMissingError as exc:
                assert isinstance(exc, ImportError)
                assert "pip install imgio[dask]" in str(exc), str(exc)
            else:
                raise AssertionError("no BackendMissingError")
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_importing_v3_imports_no_dask():
    code = ("import sys, imgio.v3, imgio; imgio.v3.imwrite; "
            "print(any(m == 'dask' or m.startswith('dask.') for m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=True)
    assert result.stdout.strip() == "False"


# -- writing --------------------------------------------------------------------------------
WRITE_CASES = {
    "tiff": ("out.tif", {}, {}),
    "tiff-zlib": ("out.tif", {"compression": "zlib"}, {}),
    "hdf5": ("out.h5", {"dataset": "volume"}, {"dataset": "volume"}),
    "npy": ("out.npy", {}, {}),
}


@pytest.mark.parametrize("name", sorted(WRITE_CASES))
def test_write_dask_round_trip(tmp_path, name):
    filename, write_kw, read_kw = WRITE_CASES[name]
    darr = da.from_array(STACK, chunks=(5, 20, 24)) + 1
    path = tmp_path / filename
    assert lz.write_dask(path, darr, **write_kw) is None
    np.testing.assert_array_equal(iio.imread(path, **read_kw), STACK + 1)
    # imwrite dispatches dask arrays to write_dask
    path2 = tmp_path / ("v3-" + filename)
    iio.imwrite(path2, darr[::-1], **write_kw)
    np.testing.assert_array_equal(iio.imread(path2, **read_kw), (STACK + 1)[::-1])
    # and what imgio writes, imgio reads lazily
    np.testing.assert_array_equal(imgio.to_dask(path2, **read_kw).compute(), (STACK + 1)[::-1])
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".imgio-partial")]


def test_write_dask_small_and_bytes(tmp_path):
    plane = da.from_array(STACK[0], chunks=(20, 12))
    iio.imwrite(tmp_path / "plane.tif", plane)
    np.testing.assert_array_equal(iio.imread(tmp_path / "plane.tif"), STACK[0])
    for ext in (".tif", ".npy", ".h5"):
        data = iio.imwrite("<bytes>", da.from_array(STACK, chunks=4), extension=ext)
        np.testing.assert_array_equal(iio.imread(data), STACK)
    # a format that cannot grow one ndimage on disk gets the whole array
    iio.imwrite(tmp_path / "all.npz", da.from_array(STACK, chunks=4))
    np.testing.assert_array_equal(iio.imread(tmp_path / "all.npz"), STACK)
    with pytest.raises(errors.ShapeError, match="compute_chunk_sizes"):
        lz.write_dask(tmp_path / "x.tif", da.from_array(STACK, chunks=4)[da.from_array(STACK)[:, 0, 0] > 5])


def test_write_dask_failure_leaves_no_file(tmp_path):
    def boom(block):
        if block.max() > 0:
            raise RuntimeError("compute failed")
        return block

    darr = da.from_array(np.stack([np.zeros((4, 4))] * 3 + [np.ones((4, 4))]),
                         chunks=(1, 4, 4)).map_blocks(boom)
    for name in ("bad.tif", "bad.npy", "bad.h5"):
        with pytest.raises(RuntimeError, match="compute failed"):
            lz.write_dask(tmp_path / name, darr)
    assert os.listdir(tmp_path) == []


# -- on a real dask.distributed cluster ---------------------------------------------------------
@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0", memory_limit="1GiB",
                                  silence_logs=40) as cluster:
        with distributed.Client(cluster) as c:
            yield c


DISTRIBUTED_CASES = ["folder", "h5-series", "h5-gzip", "imagej", "ome", "tiff-zlib", "npy"]


def test_distributed_reductions(client, files):
    """Reductions over every layout, computed on the worker processes in one go."""
    work, expected = {}, {}
    with dask.config.set({"array.chunk-size": "4KiB"}):
        for name in DISTRIBUTED_CASES:
            key, kw = CASES[name]
            eager = iio.imread(files[key], **kw)
            darr = imgio.to_dask(files[key], **kw)
            assert darr.npartitions > 1, name
            work[name] = [darr.mean(axis=0), darr.max(), darr.astype("u8").sum()]
            expected[name] = [eager.mean(axis=0), eager.max(), eager.sum(dtype=np.uint64)]
    results = client.gather(client.compute(work))
    for name in DISTRIBUTED_CASES:
        mean, high, total = results[name]
        np.testing.assert_allclose(mean, expected[name][0], err_msg=name)
        assert high == expected[name][1], name
        assert total == expected[name][2], name


def test_distributed_lazy_array_and_writes(client, files, tmp_path):
    arr = imgio.lazy(files["h5"], dataset="chunked")
    future = client.submit(lambda a: a[3:5, ::2].sum(dtype="u8"), arr)
    assert future.result() == STACK[3:5, ::2].sum(dtype=np.uint64)
    darr = imgio.to_dask(files["folder"]).astype("f4") / 2
    for name, kw in (("d.npy", {}), ("d.tif", {}), ("d.h5", {"dataset": "half"})):
        lz.write_dask(tmp_path / name, darr, **kw)
        np.testing.assert_array_equal(iio.imread(tmp_path / name, **kw),
                                      STACK.astype("f4") / 2)
