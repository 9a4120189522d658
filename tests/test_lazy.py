"""Lazy arrays and dask: imgio.lazy against the eager imread, on the threaded
scheduler and on a real dask.distributed LocalCluster.

The first part measures the plugin contract the lazy layer is built on
(``chunks``/``read_region``): Hypothesis boxes over real files of every plugin
equal ``imread()[box]``, and counted reads prove that only the chunks a box
touches are read.  The rest checks LazyArray and dask on top of it."""
from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
import textwrap
import threading

import cloudpickle
import dask
import dask.array as da
import distributed
import h5py
import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import imgio
import imgio.v3 as iio
from imgio import errors
from imgio import lazy as lz
from imgio.lazy import sources

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


# -- the plugin contract: chunks() and read_region() ------------------------------------------
@pytest.fixture(scope="module")
def region_files(tmp_path_factory):
    """(path, keywords) of real files of every plugin and layout, with imread's result."""
    d = tmp_path_factory.mktemp("regions")
    rgb = RNG.integers(0, 255, (4, 30, 20, 3), dtype=np.uint8)
    out = {}

    def add(name, path, **kw):
        out[name] = (str(path), kw, iio.imread(path, **kw))

    tifffile.imwrite(d / "tiles.tif", STACK, compression="zlib", tile=(16, 16))
    add("tiff-tiles", d / "tiles.tif")
    tifffile.imwrite(d / "strips.tif", STACK, compression="zlib", rowsperstrip=7)
    add("tiff-strips", d / "strips.tif")
    tifffile.imwrite(d / "raw.tif", STACK)
    add("tiff-raw", d / "raw.tif")
    tifffile.imwrite(d / "rgb.tif", rgb, compression="zlib", rowsperstrip=4, photometric="rgb")
    add("tiff-rgb", d / "rgb.tif")
    tifffile.imwrite(d / "planar.tif", rgb.transpose(0, 3, 1, 2).copy(), compression="zlib",
                     tile=(16, 16), photometric="rgb", planarconfig="separate")
    add("tiff-planar", d / "planar.tif")
    tifffile.imwrite(d / "hyper.tif", HYPER, imagej=True, metadata={"axes": "TZCYX"})
    add("imagej", d / "hyper.tif")
    tifffile.imwrite(d / "hyper.ome.tif", HYPER, ome=True, metadata={"axes": "TZCYX"},
                     compression="zlib", tile=(16, 16))
    add("ome", d / "hyper.ome.tif")
    with tifffile.TiffWriter(d / "pyramid.ome.tif") as w:
        w.write(STACK[0], subifds=1, tile=(16, 16), compression="zlib")
        w.write(STACK[0, ::2, ::2], subfiletype=1, tile=(16, 16), compression="zlib")
    add("pyramid-level1", d / "pyramid.ome.tif", level=1)
    with tifffile.TiffWriter(d / "series.tif") as w:
        w.write(STACK[:3], compression="zlib", photometric="minisblack")
        w.write(rgb[0], photometric="rgb", compression="zlib")
    add("series1", d / "series.tif", series=1)
    add("series-index1", d / "series.tif", index=1)
    add("page4", d / "tiles.tif", page=4)
    with h5py.File(d / "data.h5", "w") as f:
        f.create_dataset("chunked", data=STACK, chunks=(3, 16, 8), compression="gzip")
        f.create_dataset("contiguous", data=STACK)
        f.create_dataset("plane", data=STACK[0])
        group = f.create_group("frames")
        for i, plane in enumerate(STACK[:5]):
            group.create_dataset(str(i), data=plane)
    add("h5-chunked", d / "data.h5", dataset="chunked")
    add("h5-frame", d / "data.h5", dataset="chunked", index=3)
    add("h5-contiguous", d / "data.h5", dataset="contiguous")
    add("h5-plane-batch", d / "data.h5", dataset="plane", index=...)
    add("h5-frames", d / "data.h5", dataset="frames")
    bdv = d / "bdv.h5"
    with h5py.File(bdv, "w") as f:  # BigDataViewer: setups and levels, int16 holding uint16
        f["s00/resolutions"] = np.array([[1, 1, 1], [2, 2, 1]], np.float64)
        f["s00/subdivisions"] = np.array([[16, 16, 4], [16, 16, 4]], np.int32)
        for t in range(2):
            vol = (STACK[:6] + t).astype("<u2")
            f.create_dataset(f"t{t:05d}/s00/0/cells", data=vol.view("<i2"), chunks=(4, 16, 16))
            f.create_dataset(f"t{t:05d}/s00/1/cells", data=vol[:, ::2, ::2].view("<i2"),
                             chunks=(4, 8, 8))
    add("bdv-level1", bdv, level=1)
    np.save(d / "c.npy", STACK)
    add("npy", d / "c.npy")
    np.save(d / "f.npy", np.asfortranarray(STACK))
    add("npy-fortran", d / "f.npy")
    add("npy-batch", d / "c.npy", index=...)
    np.savez(d / "stored.npz", STACK, np.asfortranarray(STACK[::-1]))
    add("npz-stored", d / "stored.npz", index=1)
    add("npz-stored-batch", d / "stored.npz", index=...)
    np.savez_compressed(d / "packed.npz", STACK, STACK + 1)
    add("npz-compressed", d / "packed.npz", index=...)
    folder = d / "slices"
    folder.mkdir()
    for i, plane in enumerate(STACK):
        tifffile.imwrite(folder / f"z{i}.tif", plane, compression="zlib", tile=(16, 16))
    add("folder", folder)
    add("folder-slice", folder, index=4)
    png = folder.parent / "plane.png"
    iio.imwrite(png, rgb[0])
    add("png", png)
    return out


REGION_CASES = ["tiff-tiles", "tiff-strips", "tiff-raw", "tiff-rgb", "tiff-planar", "imagej",
                "ome", "pyramid-level1", "series1", "series-index1", "page4", "h5-chunked",
                "h5-frame", "h5-contiguous", "h5-plane-batch", "h5-frames", "bdv-level1", "npy",
                "npy-fortran", "npy-batch", "npz-stored", "npz-stored-batch",
                "npz-compressed", "folder", "folder-slice", "png"]


@st.composite
def _boxes(draw, shape):
    box = []
    for n in shape:
        a = draw(st.integers(0, n))
        b = draw(st.integers(a, n))
        box.append(slice(a, b))
    return tuple(box)


@pytest.mark.parametrize("name", REGION_CASES)
def test_read_region_equals_imread_box(region_files, name):
    path, kw, eager = region_files[name]
    with iio.imopen(path, "r") as f:
        native = f.chunks(**kw)
        assert native is None or len(native) == eager.ndim
        full = f.read_region(tuple(slice(0, n) for n in eager.shape), **kw)
        np.testing.assert_array_equal(full, eager)

        @settings(max_examples=40, deadline=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(_boxes(eager.shape), st.booleans())
        def check(box, with_out):
            out = np.full(tuple(b.stop - b.start for b in box), 7, eager.dtype) if with_out \
                else None
            got = f.read_region(box, out=out, **kw)
            if with_out:
                assert got is out
            assert got.flags.c_contiguous and got.dtype == eager.dtype
            np.testing.assert_array_equal(got, eager[box])

        check()


def test_read_region_refuses_bad_boxes_and_keywords(region_files):
    path, kw, eager = region_files["tiff-tiles"]
    with iio.imopen(path, "r") as f:
        for box in [(slice(0, 2),), (slice(0, 2), slice(0, 41), slice(0, 1)),
                    (slice(0, 2, 2), slice(0, 1), slice(0, 1)), (0, slice(0, 1), slice(0, 1))]:
            with pytest.raises(ValueError):
                f.read_region(box)
        with pytest.raises(errors.ShapeError):
            f.read_region((slice(0, 2),) * 3, out=np.empty((3, 2, 2), eager.dtype))
        with pytest.raises(errors.DTypeError):
            f.read_region((slice(0, 2),) * 3, out=np.empty((2, 2, 2), np.float32))


def test_native_chunks_of_each_plugin(region_files):
    expect = {"tiff-tiles": (1, 16, 16), "tiff-strips": (1, 7, 24), "tiff-rgb": (1, 4, 20, 3),
              "tiff-planar": (1, 1, 16, 16), "imagej": (1, 1, 1, 16, 12), "ome": (1, 1, 1, 16, 12),
              "h5-chunked": (3, 16, 8), "h5-frame": (16, 8), "h5-contiguous": (1, 40, 24),
              "h5-frames": (1, 40, 24), "npy": (1, 40, 24), "npy-fortran": (12, 40, 1),
              "folder": (1, 16, 16), "png": None, "bdv-level1": (1, 4, 8, 8),
              "npz-stored": (12, 40, 1), "npz-stored-batch": (1, 1, 40, 24),
              "npz-compressed": None}
    for name, native in expect.items():
        path, kw, _ = region_files[name]
        with iio.imopen(path, "r") as f:
            assert f.chunks(**kw) == native, name


def _touched(box, seg, shape):
    """The segment grid cells (per axis) a box touches."""
    return {idx for idx in np.ndindex(*(-(-n // s) for n, s in zip(shape, seg)))
            if all(b.start < (i + 1) * s and b.stop > i * s for i, s, b in zip(idx, seg, box))}


@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_tiff_reads_only_the_segments_a_box_touches(region_files, monkeypatch_session, data):
    """Counting tifffile segment reads: a box decodes exactly the tiles it touches."""
    path, kw, eager = region_files["tiff-tiles"]
    box = data.draw(_boxes(eager.shape))
    seen = []
    plugin_cls = type(iio.imopen(path, "r"))
    real = plugin_cls._region_segment

    def counting(self, fh, decode, kf, offset, count, j, *args):
        seen.append((offset, j))
        return real(self, fh, decode, kf, offset, count, j, *args)

    monkeypatch_session.setattr(plugin_cls, "_region_segment", counting)
    with iio.imopen(path, "r") as f:
        got = f.read_region(box)
    monkeypatch_session.undo()
    np.testing.assert_array_equal(got, eager[box])
    pages = box[0].stop - box[0].start
    in_page = _touched(box[1:], (16, 16), eager.shape[1:])
    if got.size == 0:
        assert seen == []
    else:
        assert len(seen) == pages * len(in_page)
        assert {j for _, j in seen} == {y * 2 + x for y, x in in_page}
        assert len(set(seen)) == len(seen)  # each segment of each page read once


@pytest.fixture(scope="module")
def monkeypatch_session():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def test_hdf5_decodes_only_the_chunks_a_box_touches(tmp_path):
    """A chunk overwritten with garbage breaks exactly the reads that touch it."""
    path = tmp_path / "bad.h5"
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("x", data=STACK, chunks=(3, 16, 8), compression="gzip")
        info = ds.id.get_chunk_info_by_coord((3, 16, 8))
    with open(path, "r+b") as fh:
        fh.seek(info.byte_offset)
        fh.write(b"\x00" * info.size)
    arr = imgio.lazy(path, dataset="x")
    np.testing.assert_array_equal(arr[:3], STACK[:3])
    np.testing.assert_array_equal(arr[3:6, :16], STACK[3:6, :16])
    np.testing.assert_array_equal(arr[3:6, 16:, :8], STACK[3:6, 16:, :8])
    np.testing.assert_array_equal(arr[3:6, 16:32, 16:], STACK[3:6, 16:32, 16:])
    with pytest.raises(errors.CorruptFileError, match="bad.h5"):
        arr[4, 20, 10]


class _CountingFile(io.BytesIO):
    def __init__(self, data):
        super().__init__(data)
        self.read_bytes = 0

    def readinto(self, b):
        n = super().readinto(b)
        self.read_bytes += n
        return n

    def read(self, n=-1):
        data = super().read(n)
        self.read_bytes += len(data)
        return data


def test_npy_reads_only_the_bytes_of_the_box(region_files):
    path, _, eager = region_files["npy"]
    with open(path, "rb") as fh:
        fh_data = fh.read()
    src = _CountingFile(fh_data)
    with iio.imopen(src, "r", extension=".npy") as f:
        before = src.read_bytes
        got = f.read_region((slice(2, 4), slice(5, 9), slice(0, 24)))
        np.testing.assert_array_equal(got, eager[2:4, 5:9])
        header = 128
        assert src.read_bytes - before <= got.nbytes + 2 * header


def test_folder_opens_only_the_slices_a_box_touches(region_files, monkeypatch):
    from imgio.plugins import folder as fp
    path, _, eager = region_files["folder"]
    opened = []
    real = fp.imopen
    monkeypatch.setattr(fp, "imopen", lambda uri, *a, **k: opened.append(os.path.basename(
        str(uri))) or real(uri, *a, **k))
    with iio.imopen(path, "r") as f:
        f.properties()
        opened.clear()
        got = f.read_region((slice(3, 6), slice(0, 5), slice(2, 3)))
    np.testing.assert_array_equal(got, eager[3:6, :5, 2:3])
    assert sorted(opened) == ["z3.tif", "z4.tif", "z5.tif"]


# -- every selection keyword reaches the plugin ---------------------------------------------
@pytest.mark.parametrize("name", REGION_CASES)
def test_lazy_and_dask_honour_the_selection(region_files, name):
    path, kw, eager = region_files[name]
    arr = imgio.lazy(path, **kw)
    assert (arr.shape, arr.dtype) == (eager.shape, eager.dtype)
    np.testing.assert_array_equal(np.asarray(arr), eager)
    with dask.config.set({"array.chunk-size": "1KiB"}):
        darr = imgio.to_dask(path, **kw)
    assert darr.shape == eager.shape
    np.testing.assert_array_equal(darr.compute(scheduler="threads"), eager)


@pytest.mark.parametrize("name", ["tiff-tiles", "h5-chunked", "npy", "folder", "png"])
def test_unknown_keywords_are_refused(region_files, name):
    path, _, _ = region_files[name]
    for call in (imgio.lazy, imgio.to_dask):
        with pytest.raises(TypeError, match="unexpected keyword"):
            call(path, no_such_keyword=1)


def test_out_of_range_selection_raises_index_error(region_files):
    path, _, _ = region_files["pyramid-level1"]
    with pytest.raises(IndexError, match="level"):
        imgio.to_dask(path, level=3)
    with pytest.raises(IndexError):
        imgio.lazy(region_files["series1"][0], series=5)


# -- damage: lazy and dask raise wherever imread raises ------------------------------------------
def _cut_files(d):
    files = {}
    tifffile.imwrite(d / "ij.tif", HYPER, imagej=True, metadata={"axes": "TZCYX"})
    tifffile.imwrite(d / "ome.ome.tif", HYPER, ome=True, metadata={"axes": "TZCYX"})
    tifffile.imwrite(d / "zlib.tif", STACK, compression="zlib")
    tifffile.imwrite(d / "tiled.tif", STACK, tile=(16, 16))
    tifffile.imwrite(d / "plain.tif", STACK)
    np.save(d / "a.npy", STACK)
    for name in ("ij.tif", "ome.ome.tif", "zlib.tif", "tiled.tif", "plain.tif", "a.npy"):
        files[name] = (d / name).read_bytes()
    return files


@pytest.mark.parametrize("fraction", [0.3, 0.55, 0.8, 0.97])
def test_cut_files_raise_like_imread(tmp_path, fraction):
    for name, data in _cut_files(tmp_path).items():
        cut = tmp_path / ("cut-" + name)
        cut.write_bytes(data[:int(len(data) * fraction)])
        try:
            eager = iio.imread(cut)
        except errors.CorruptFileError:
            eager = None
        except errors.ImgioError:  # e.g. not recognised at all any more
            continue
        if eager is None:
            with pytest.raises(errors.CorruptFileError):
                np.asarray(imgio.lazy(cut))
            with pytest.raises(errors.CorruptFileError):
                imgio.to_dask(cut).compute(scheduler="sync")
        else:
            np.testing.assert_array_equal(np.asarray(imgio.lazy(cut)), eager, err_msg=name)
            np.testing.assert_array_equal(imgio.to_dask(cut).compute(scheduler="sync"), eager)


# -- the size guard applies to lazy blocks ------------------------------------------------------
def test_size_guard_applies_to_regions(region_files, monkeypatch):
    from imgio.core import limits
    path, kw, eager = region_files["h5-chunked"]
    monkeypatch.setattr(limits, "MAX_BYTES", 4000)
    arr = imgio.lazy(path, **kw)
    np.testing.assert_array_equal(arr[0, :10], eager[0, :10])
    with pytest.raises(errors.ImageTooLargeError):
        arr[:5]
    path, kw, eager = region_files["png"]  # read only whole: the whole image counts
    monkeypatch.setattr(limits, "MAX_BYTES", 100)
    with pytest.raises(errors.ImageTooLargeError):
        imgio.lazy(path)[0, 0]


# -- imgio.lazy: a package and a function -----------------------------------------------------
def test_imgio_lazy_is_a_callable_package(files):
    import types
    assert isinstance(imgio.lazy, types.ModuleType) and callable(imgio.lazy)
    assert imgio.lazy.__name__ == "imgio.lazy"
    assert imgio.lazy(files["tiff"]).shape == STACK.shape
    import imgio.lazyio as old
    assert old.lazy is lz.lazy and old.write_dask is lz.write_dask


# -- no import cycles -----------------------------------------------------------------------------
def test_lazy_layer_imports_no_plugin():
    """The lazy layer knows plugins only through the contract (the whole-package
    cycle check is tests/core/test_import_graph.py, whose graph this reuses)."""
    from tests.core.test_import_graph import import_graph
    graph = import_graph()
    assert "imgio.lazy" not in {d for d in graph["imgio.core.plugin"]}
    for layer in ("imgio.lazy", "imgio.lazy.array", "imgio.lazy.sources", "imgio.lazy.dask",
                  "imgio.plugins.folder"):
        assert not {d for d in graph[layer] if d.startswith(("imgio.plugins.", "imgio.v3",
                                                               "imgio.plugins.tiff.fastpath"))}, layer


def test_lazy_layer_knows_no_format():
    import pathlib
    import re
    root = pathlib.Path(imgio.__file__).parent / "lazy"
    for path in root.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"^\s*(import|from)\s+(tifffile|h5py|PIL|imagecodecs|zarr)\b",
                             text, re.M), path
        assert not re.search(r"numpy\.lib\.format|\._tif\b|\._node\b|_is_volume", text), path
        assert not re.search(r"\.name\s*[!=]=", text), path
    # the patterns can fail: each finds its target in a made-up line
    assert re.search(r"^\s*(import|from)\s+(tifffile|h5py|PIL|imagecodecs|zarr)\b",
                     "x = 1\n    import tifffile\n", re.M)
    assert re.search(r"\.name\s*[!=]=", "if plugin.name == 'tifffile':")


@pytest.mark.parametrize("module", ["imgio.core.plugin", "imgio.lazy", "imgio.lazy.dask",
                                    "imgio.plugins.folder", "imgio.plugins.tiff.plugin",
                                    "imgio.lazyio", "imgio.core.imopen", "imgio.lazy.sources"])
def test_each_module_imports_first_in_a_fresh_interpreter(module):
    subprocess.run([sys.executable, "-W", "error", "-c", f"import {module}"], check=True,
                   timeout=60)


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
    assert len(sources._HANDLES) == lz.HANDLE_CACHE_SIZE
    arr = imgio.lazy(paths[-1])
    tifffile.imwrite(paths[-1], STACK[:2] + 1000)  # same shape, new mtime and content
    os.utime(paths[-1], ns=(10**18, 10**18))
    assert arr[1, 0, 0] == STACK[1, 0, 0] + 1000
    lz.clear_handle_cache()
    assert len(sources._HANDLES) == 0


def _sum_u8(arr):
    return int(arr[...].sum(dtype=np.uint64)), len(sources._HANDLES)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_reopens_its_files(files):
    import multiprocessing
    arr = imgio.lazy(files["h5"], dataset="gzip")
    arr[0]  # the parent now caches an open HDF5 file
    assert len(sources._HANDLES) == 1
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


def test_distributed_selections_and_regions(client, region_files):
    """level=, series=, dataset= and folders, computed on two worker processes."""
    names = ["pyramid-level1", "series1", "bdv-level1", "h5-frame", "folder", "tiff-planar", "png"]
    work = {}
    with dask.config.set({"array.chunk-size": "1KiB"}):
        for name in names:
            path, kw, _ = region_files[name]
            darr = imgio.to_dask(path, **kw)
            work[name] = darr[tuple(slice(n // 4, n - n // 4 or None) for n in darr.shape)]
    results = client.gather(client.compute(work))
    for name in names:
        eager = region_files[name][2]
        box = tuple(slice(n // 4, n - n // 4 or None) for n in eager.shape)
        np.testing.assert_array_equal(results[name], eager[box], err_msg=name)



def test_a_plugin_without_region_reads_or_properties_still_works_lazily(region_files,
                                                                         monkeypatch):
    """The base-class defaults: chunks() None, read_region() reads whole and slices."""
    from imgio.core.plugin import PluginV3
    from imgio.plugins.pillow import PillowPlugin
    path, _, eager = region_files["png"]
    reads = []
    real_read = PillowPlugin.read

    def counting_read(self, **kw):
        reads.append(kw)
        return real_read(self, **kw)

    def no_properties(self, **kw):
        raise NotImplementedError

    monkeypatch.setattr(PillowPlugin, "read", counting_read)
    monkeypatch.setattr(PillowPlugin, "properties", no_properties)
    assert PillowPlugin.chunks is PluginV3.chunks and PillowPlugin.read_region is PluginV3.read_region
    arr = imgio.lazy(path)
    assert arr.shape == eager.shape
    np.testing.assert_array_equal(arr[3:9, 2], eager[3:9, 2])
    assert len(reads) == 2  # one to learn the shape, one for the region
