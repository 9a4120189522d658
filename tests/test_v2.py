"""The v2 functions (``import imgio.v2 as imageio``), compared with imageio 2.38 where they agree."""
from __future__ import annotations

import dataclasses
import gc
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from imgio.v2.legacy import IMAGEIO_FORMAT_NAMES

import imgio
import imgio.v2 as iio
import imgio.v3 as iio3
from imgio.core import registry
from imgio.v2.array import Array
from imgio.errors import DTypeError, MemtestError, NoPluginError, ShapeError

DATA = Path(__file__).parent / "data"
TIF = DATA / "multipage.tif"          # one series (2, 15, 10) uint8
TIF_RGB = DATA / "multipage_rgb.tif"  # one series (2, 3, 10, 10) float64
NPZ = DATA / "stent.npz"              # one array (256, 128, 128) int16
NPY = DATA / "chelsea.npy"            # (300, 451, 3) uint8


def ref(func, *args, **kwargs):
    """Call imageio.v2.<func>, silencing its warnings (and its unclosed files)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import imageio.v2 as imageio
        try:
            return getattr(imageio, func)(*args, **kwargs)
        finally:
            gc.collect()


def ref_error(func, *args, **kwargs) -> Exception:
    with pytest.raises(Exception) as info:
        ref(func, *args, **kwargs)
    return info.value


# -- namespace ---------------------------------------------------------------------------
ALIASES = {"imsave": "imwrite", "mimsave": "mimwrite", "volsave": "volwrite",
           "mvolsave": "mvolwrite", "read": "get_reader", "save": "get_writer"}


@pytest.mark.parametrize("alias,target", sorted(ALIASES.items()))
def test_aliases_are_the_same_objects(alias, target):
    assert getattr(iio, alias) is getattr(iio, target)


def test_all_names_exist():
    names = ("imread mimread volread mvolread imwrite mimwrite volwrite mvolwrite imsave "
             "mimsave volsave mvolsave read save get_reader get_writer help show_formats "
             "RETURN_BYTES formats Array to_nbytes is_batch is_volume").split()
    for name in names:
        assert hasattr(iio, name), name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import imageio.v2 as imageio
    assert set(imageio.__all__) <= set(iio.__all__)
    assert iio.RETURN_BYTES == "<bytes>"


@pytest.mark.parametrize("name", "imread mimread volread mvolread imwrite mimwrite volwrite "
                         "mvolwrite imsave mimsave volsave mvolsave read save get_reader "
                         "get_writer help show_formats RETURN_BYTES formats Array".split())
def test_top_level_serves_v2(name):
    assert getattr(imgio, name) is getattr(iio, name)


def test_top_level_imread_has_no_deprecation_warning():
    # filterwarnings=error would turn any warning into a failure
    assert imgio.imread(TIF).shape == (2, 15, 10)


# -- reading -------------------------------------------------------------------------------
READS = [(TIF, (2, 15, 10), np.uint8), (TIF_RGB, (2, 3, 10, 10), np.float64),
         (NPZ, (256, 128, 128), np.int16), (NPY, (300, 451, 3), np.uint8)]


@pytest.mark.parametrize("func", ["imread", "volread"])
@pytest.mark.parametrize("path,shape,dtype", READS, ids=lambda v: getattr(v, "name", None))
def test_imread_volread(func, path, shape, dtype):
    im = getattr(iio, func)(path)
    assert type(im) is Array
    assert im.shape == shape and im.dtype == dtype
    assert isinstance(im.meta, dict) and im.meta  # .meta for every format
    np.testing.assert_array_equal(im, iio3.imread(path, index=0))
    if path.suffix != ".npy":  # imageio has no .npy reader
        np.testing.assert_array_equal(im, ref(func, path))


def test_imread_meta_is_per_image_metadata():
    assert iio.imread(TIF).meta["ImageWidth"] == 10
    assert iio.imread(TIF).meta == iio3.immeta(TIF, index=0, exclude_applied=False)
    assert iio.imread(NPZ).meta["shape"] == (256, 128, 128)
    assert iio.imread(TIF, page=1).meta["ImageLength"] == 15


def test_imread_kwargs_go_to_read():
    np.testing.assert_array_equal(iio.imread(TIF, page=1), iio3.imread(TIF, page=1))
    with pytest.raises(TypeError, match="index"):
        iio.imread(TIF, index=1)
    with pytest.raises(TypeError):
        iio.imread(NPZ, nonsense=1)


def test_imread_from_bytes_file_and_pathlike():
    data = TIF.read_bytes()
    np.testing.assert_array_equal(iio.imread(data), iio.imread(TIF))
    with open(TIF, "rb") as fh:
        np.testing.assert_array_equal(iio.imread(fh), iio.imread(str(TIF)))


def test_imread_of_multi_series_tiff_reads_series_0(tmp_path):
    path = tmp_path / "series.tif"
    a, b = np.ones((5, 6), np.uint8), np.zeros((3, 4, 7), np.uint16)
    iio3.imwrite(path, [a, b])
    np.testing.assert_array_equal(iio.imread(path), a)
    np.testing.assert_array_equal(iio.volread(path), a)
    got = iio.mimread(path)
    assert [g.shape for g in got] == [(5, 6), (3, 4, 7)]
    assert [type(g) for g in got] == [Array, Array]
    assert [g.shape for g in ref("mimread", path)] == [(5, 6), (3, 4, 7)]
    assert [g.shape for g in iio.mvolread(path)] == [(5, 6), (3, 4, 7)]


@pytest.mark.parametrize("path", [TIF, TIF_RGB, NPZ], ids=lambda p: p.name)
def test_mimread_matches_imageio(path):
    got, expected = iio.mimread(path), ref("mimread", path)
    assert len(got) == len(expected)
    assert all(type(g) is Array and g.meta for g in got)
    for g, e in zip(got, expected):
        np.testing.assert_array_equal(g, e)


@pytest.mark.parametrize("path", [TIF, TIF_RGB, NPZ], ids=lambda p: p.name)
def test_mvolread_matches_imageio(path):
    got, expected = iio.mvolread(path), ref("mvolread", path)
    assert [g.shape for g in got] == [e.shape for e in expected]
    for g, e in zip(got, expected):
        np.testing.assert_array_equal(g, e)


def test_mimread_splits_only_a_single_batch(tmp_path):
    assert [g.shape for g in iio.mimread(NPY)] == [(300, 451, 3)]  # one RGB image
    path = tmp_path / "rgba_like.npy"
    np.save(path, np.zeros((6, 7, 4), np.uint8))  # (N, H, 4): an RGBA image, not split
    assert [g.shape for g in iio.mimread(path)] == [(6, 7, 4)]
    np.save(path, np.zeros((6, 7, 5), np.uint8))  # last axis >= 5: a batch
    assert len(iio.mimread(path)) == 6
    path = tmp_path / "two.npz"
    np.savez(path, np.zeros((3, 4, 5)), np.ones((3, 4, 5)))  # two ndimages: not split
    assert [g.shape for g in iio.mimread(path)] == [(3, 4, 5), (3, 4, 5)]


def test_mimread_kwargs_go_to_iter():
    got = iio.mimread(TIF, page=1)  # the TIFF plugin's iter passes keywords to each read
    assert [g.shape for g in got] == [(15, 10)]
    np.testing.assert_array_equal(got[0], iio3.imread(TIF, page=1))


# -- memtest ---------------------------------------------------------------------------------
NBYTES_OK = [
    (True, 256_000_000), (False, float("inf")), (None, float("inf")), (0, float("inf")),
    ("", float("inf")), (1234, 1234), (12.5, 12.5), ("1", 1), ("8B", 8), ("1.5 GB", 1.5e9),
    ("100KiB", 102400), ("256MB", 256e6), ("1kB", 1000), ("1k", 1000), ("2 MiB", 2 * 1024**2),
    ("3GiB", 3 * 1024**3), ("1TB", 1e12), ("1PB", 1e15), ("1EB", 1e18), ("1ZB", 1e21),
    ("1YB", 1e24), ("1YiB", 1024.0**8), ("10.", 10),
]


@pytest.mark.parametrize("arg,expected", NBYTES_OK, ids=repr)
def test_to_nbytes(arg, expected):
    assert iio.to_nbytes(arg, "256MB") == expected
    assert ref("to_nbytes", arg, "256MB") == expected


@pytest.mark.parametrize("arg", ["1mb", "1KB", "1kiB", "8b", "-1MB", "1e3", "MB", "1 XB", "1.2.3MB",
                                 "1 KiBB"])
def test_to_nbytes_errors(arg):
    with pytest.raises(ValueError, match="capitalisation") as info:
        iio.to_nbytes(arg)
    assert repr(arg) in str(info.value)
    assert isinstance(ref_error("to_nbytes", arg), ValueError)


def test_to_nbytes_rejects_other_types():
    with pytest.raises(ValueError):
        iio.to_nbytes([1, 2])


def _many_arrays(tmp_path, n=6, shape=(10, 10)):
    path = tmp_path / "many.npz"
    np.savez(path, *[np.full(shape, i, np.float64) for i in range(n)])  # 800 B each
    return path


@pytest.mark.parametrize("func", ["mimread", "mvolread"])
def test_memtest_stops_before_reading_everything(tmp_path, monkeypatch, func):
    path = _many_arrays(tmp_path)
    from imgio.plugins import npy
    loads = []
    original = npy.NpzPlugin._load
    monkeypatch.setattr(npy.NpzPlugin, "_load", lambda self, i: loads.append(i) or original(self, i))
    with pytest.raises(MemtestError) as info:
        getattr(iio, func)(path, memtest=2000)
    assert isinstance(info.value, RuntimeError)
    msg = str(info.value)
    assert "has read over 2000B" in msg and f"{func}()" in msg
    assert "memtest=False" in msg and "get_reader()" in msg and str(path) in msg
    assert loads == [0, 1, 2]  # 2400 B > 2000 B: stopped after the third image


@pytest.mark.parametrize("memtest", [False, None, 0, True, "1MB", 10**6, "1 MiB", 4800])
def test_memtest_forms_that_pass(tmp_path, memtest):
    path = _many_arrays(tmp_path)
    assert len(iio.mimread(path, memtest=memtest)) == 6
    assert len(iio.mvolread(path, memtest=memtest)) == 6


def test_memtest_limit_is_strictly_greater_and_matches_imageio(tmp_path):
    path = _many_arrays(tmp_path)
    assert len(iio.mimread(path, memtest=4800)) == 6  # exactly the total: allowed
    with pytest.raises(MemtestError):
        iio.mimread(path, memtest=4799)
    assert isinstance(ref_error("mimread", path, memtest=4799), RuntimeError)


def test_memtest_default_is_applied(tmp_path, monkeypatch):
    seen = []
    real = iio.to_nbytes
    monkeypatch.setattr(iio, "to_nbytes", lambda arg, default=None: seen.append(
        (arg, default)) or real(arg, default))
    path = _many_arrays(tmp_path)
    iio.mimread(path)
    iio.mvolread(path, memtest=True)
    assert seen == [("256MB", "256MB"), (True, "1GB")]


def test_memtest_bad_string():
    with pytest.raises(ValueError, match="capitalisation"):
        iio.mimread(TIF, memtest="1mb")


def test_memtest_defaults():
    assert iio.to_nbytes(True, iio.MEMTEST_DEFAULT_MIM) == 256_000_000
    assert iio.to_nbytes(True, iio.MEMTEST_DEFAULT_MVOL) == 1_000_000_000
    import inspect
    assert inspect.signature(iio.mimread).parameters["memtest"].default == "256MB"
    assert inspect.signature(iio.mvolread).parameters["memtest"].default == "1GB"


# -- format= ------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt,expected", [
    (None, {}), ("tif", {"extension": ".tif"}), (".tif", {"extension": ".tif"}),
    ("TIF", {"extension": ".tif"}), (".TIF", {"extension": ".tif"}),
    ("x.tif", {"extension": ".tif"}), ("dir/x.TIFF", {"extension": ".tiff"}),
    (Path("a/b.npz"), {"extension": ".npz"}), ("x.ome.tif", {"extension": ".tif"}),
    ("TIFF", {"plugin": "tifffile"}), ("tiff", {"plugin": "tifffile"}),
    ("tifffile", {"plugin": "tifffile"}), ("TiffFile", {"plugin": "tifffile"}),
    ("TIFF-PIL", {"plugin": "tifffile"}), ("NPZ", {"plugin": "npz"}), ("npz", {"plugin": "npz"}),
    (".npz", {"extension": ".npz"}), ("npy", {"plugin": "npy"}), ("NPY", {"plugin": "npy"}),
])
def test_format_argument(fmt, expected):
    assert iio._format_args(fmt) == expected


@pytest.mark.parametrize("fmt", ["bogus", "x.bogus", ".xyz", "PNG-FI"])
def test_unknown_format_names_the_value(fmt):
    with pytest.raises(ValueError) as info:
        iio.imread(TIF, format=fmt)
    assert repr(fmt) in str(info.value)  # imageio always says `None` here ([bug])
    assert "None" in str(ref_error("imread", TIF, format="bogus"))


@pytest.mark.parametrize("fmt", [123, "", b"tif"])
def test_format_of_wrong_type(fmt):
    with pytest.raises(ValueError):
        iio.imread(TIF, format=fmt)


@pytest.mark.parametrize("fmt", ["tif", ".tiff", "TIFF", "tifffile", "x.tif"])
def test_format_reads(fmt):
    assert iio.imread(TIF, format=fmt).shape == (2, 15, 10)


def test_format_plugin_refusing_the_file():
    with pytest.raises(ValueError) as info:
        iio.imread(TIF, format="npz")
    assert "npz" in str(info.value) and str(TIF) in str(info.value)


def test_format_plugin_class_and_format_object():
    from imgio.plugins.npy import NpzPlugin
    assert iio.imread(NPZ, format=NpzPlugin).shape == (256, 128, 128)
    assert iio.imread(NPZ, format=iio.formats["npz"]).shape == (256, 128, 128)


def test_format_needed_for_bytes():
    im = np.zeros((4, 5), np.uint8)
    with pytest.raises(NoPluginError, match="extension"):
        iio.imwrite("<bytes>", im)
    data = iio.imwrite("<bytes>", im, format="tif")
    assert isinstance(data, bytes) and data[:2] in (b"II", b"MM")


# -- mode letters against the registry --------------------------------------------------------
@pytest.fixture
def image_only_npz(monkeypatch):
    """Pretend the npz format can hold single images only."""
    _replace_spec(monkeypatch, "npz", modes="i")


def _replace_spec(monkeypatch, name, **changes):
    plugins = [dataclasses.replace(s, **changes) if s.name == name else s
               for s in registry.PLUGINS]
    monkeypatch.setattr(registry, "PLUGINS", plugins)


@pytest.mark.parametrize("func,mode", [("mimread", "I"), ("volread", "v"), ("mvolread", "V")])
def test_read_mode_the_format_cannot_do(image_only_npz, func, mode):
    with pytest.raises(ValueError) as info:
        getattr(iio, func)(NPZ)
    msg = str(info.value)
    assert "npz" in msg and f"'{mode}'" in msg and str(NPZ) in msg
    assert iio.imread(NPZ).shape == (256, 128, 128)  # 'i' still works


@pytest.mark.parametrize("func,data", [
    ("mimwrite", [np.zeros((4, 5))] * 2), ("volwrite", np.zeros((3, 4, 5))),
    ("mvolwrite", [np.zeros((3, 4, 5))])])
def test_write_mode_the_format_cannot_do(image_only_npz, tmp_path, func, data):
    path = tmp_path / "x.npz"
    with pytest.raises(ValueError, match="cannot write"):
        getattr(iio, func)(path, data)
    assert not os.listdir(tmp_path)  # nothing left behind
    iio.imwrite(path, np.zeros((4, 5)))
    assert path.exists()


# -- writing -------------------------------------------------------------------------------------
EXTS = [".tif", ".npz", ".npy"]


@pytest.mark.parametrize("ext", EXTS)
@pytest.mark.parametrize("shape", [(6, 7), (6, 7, 3), (6, 7, 4)])
def test_imwrite_roundtrip(tmp_path, ext, shape):
    im = np.random.default_rng(0).integers(0, 255, shape).astype(np.uint8)
    path = tmp_path / f"im{ext}"
    assert iio.imwrite(path, im) is None
    np.testing.assert_array_equal(iio.imread(path), im)
    data = iio.imwrite("<bytes>", im, format=ext)
    np.testing.assert_array_equal(iio.imread(data), im)


def test_imwrite_accepts_array_likes_and_arrays_with_meta(tmp_path):
    class Wrapper:
        def __array__(self, dtype=None, copy=None):
            return np.ones((3, 4), np.uint8)

    iio.imwrite(tmp_path / "w.tif", Wrapper())
    assert iio.imread(tmp_path / "w.tif").sum() == 12
    iio.imwrite(tmp_path / "l.tif", [[1, 2], [3, 4]])
    assert iio.imread(tmp_path / "l.tif").shape == (2, 2)
    iio.imwrite(tmp_path / "a.tif", iio.imread(TIF)[0])


BAD_IMAGES = [
    (np.zeros((3, 4, 5, 6)), ShapeError, "Image must be 2D (grayscale, RGB, or RGBA)."),
    (np.zeros((4, 5, 6)), ShapeError, "Image must be 2D (grayscale, RGB, or RGBA)."),
    (np.zeros(5), ShapeError, "Image must be 2D (grayscale, RGB, or RGBA)."),
    (np.zeros((4, 4), bool), DTypeError, "Image is not numeric, but ndarray."),
    (np.array([["a", "b"]]), DTypeError, "Image is not numeric, but ndarray."),
    ("text", DTypeError, "Image is not numeric, but str."),
]


@pytest.mark.parametrize("im,error,message", BAD_IMAGES)
def test_imwrite_validation_matches_imageio(tmp_path, im, error, message):
    with pytest.raises(error) as info:
        iio.imwrite(tmp_path / "x.tif", im)
    assert isinstance(info.value, ValueError)
    assert str(info.value).startswith(message)
    assert "Got an array of shape" in str(info.value)
    expected = ref_error("imwrite", tmp_path / "y.tif", im)
    assert str(expected) == message
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize("ext", EXTS)
def test_mimwrite_roundtrip(tmp_path, ext):
    ims = [np.full((5, 6), i, np.uint16) for i in range(3)]
    path = tmp_path / f"m{ext}"
    assert iio.mimwrite(path, ims) is None
    got = iio.mimread(path)
    assert len(got) == 3
    for g, e in zip(got, ims):
        np.testing.assert_array_equal(g, e)
    got = iio.mimread(iio.mimwrite("<bytes>", np.stack(ims), format=ext))
    assert len(got) == 3


def test_mimwrite_tif_matches_imageio(tmp_path):
    ims = [np.full((5, 6), i, np.uint8) for i in range(3)]
    iio.mimwrite(tmp_path / "ours.tif", ims)
    ref("mimwrite", tmp_path / "theirs.tif", ims)
    ours, theirs = ref("mimread", tmp_path / "ours.tif"), iio.mimread(tmp_path / "theirs.tif")
    assert len(ours) == len(theirs) == 3
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("ims", [np.zeros((4, 5)), np.zeros((4, 5, 3)), np.zeros(3)])
def test_mimwrite_validation(tmp_path, ims):
    with pytest.raises(ShapeError, match=r"^Image data must be a sequence of ndimages\."):
        iio.mimwrite(tmp_path / "x.tif", ims)
    assert str(ref_error("mimwrite", tmp_path / "y.tif", ims)) == \
        "Image data must be a sequence of ndimages."


def test_mimwrite_bool_images(tmp_path):
    with pytest.raises(DTypeError):
        iio.mimwrite(tmp_path / "x.tif", [np.zeros((4, 5), bool)])


@pytest.mark.parametrize("ext", [".tif", ".npz", ".npy"])
@pytest.mark.parametrize("shape", [(4, 5, 6), (4, 5, 6, 3)])
def test_volwrite_roundtrip(tmp_path, ext, shape):
    vol = np.random.default_rng(1).random(shape).astype(np.float32)
    path = tmp_path / f"v{ext}"
    assert iio.volwrite(path, vol) is None
    got = iio.volread(path)
    assert type(got) is Array
    np.testing.assert_array_equal(got, vol)


@pytest.mark.parametrize("vol", [np.zeros((3, 4, 3)), np.zeros((3, 4, 5, 40)), np.zeros((4, 5)),
                                 np.zeros((2, 3, 4, 5, 6))])
def test_volwrite_validation(tmp_path, vol):
    with pytest.raises(ShapeError, match=r"^Image must be 3D, or 4D if each voxel is a tuple\."):
        iio.volwrite(tmp_path / "x.tif", vol)
    assert str(ref_error("volwrite", tmp_path / "y.tif", vol)) == \
        "Image must be 3D, or 4D if each voxel is a tuple."


@pytest.mark.parametrize("ext", [".tif", ".npz"])
def test_mvolwrite_roundtrip(tmp_path, ext):
    vols = [np.full((3, 4, 5), i, np.int16) for i in range(2)]
    path = tmp_path / f"mv{ext}"
    assert iio.mvolwrite(path, vols) is None
    got = iio.mvolread(path)
    assert [g.shape for g in got] == [(3, 4, 5)] * 2
    np.testing.assert_array_equal(got[1], vols[1])
    data = iio.mvolwrite("<bytes>", np.stack(vols), format=ext)
    assert len(iio.mvolread(data)) == 2


def test_mvolwrite_validation(tmp_path):
    with pytest.raises(ShapeError, match="3D, or 4D"):
        iio.mvolwrite(tmp_path / "x.tif", [np.zeros((3, 4, 5)), np.zeros((3, 4))])
    with pytest.raises(ShapeError):
        iio.mvolwrite(tmp_path / "x.tif", np.zeros((3, 4, 3)))
    assert not os.listdir(tmp_path)


def test_write_kwargs_go_to_the_plugin(tmp_path):
    path = tmp_path / "z.tif"
    iio.imwrite(path, np.zeros((20, 20), np.uint8), compression="zlib")
    assert iio.imread(path).meta["compression"] == 8  # tifffile COMPRESSION.ADOBE_DEFLATE, as imageio
    with pytest.raises(TypeError):
        iio.imwrite(tmp_path / "z.npy", np.zeros((4, 4)), compression="zlib")
    assert not (tmp_path / "z.npy").exists()


def test_failed_write_keeps_old_file(tmp_path):
    path = tmp_path / "keep.npy"
    iio.imwrite(path, np.ones((4, 4)))
    before = path.read_bytes()
    with pytest.raises(TypeError):
        iio.imwrite(path, np.zeros((4, 4)), bogus=1)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["keep.npy"]


def test_write_errors_from_request(tmp_path):
    with pytest.raises(FileNotFoundError):
        iio.imwrite(tmp_path / "missing" / "x.tif", np.zeros((4, 4)))
    with pytest.raises(ValueError, match="extension"):
        iio.imwrite(tmp_path / "x.bogus", np.zeros((4, 4)))
    with pytest.raises(FileNotFoundError):
        iio.imread(tmp_path / "nope.tif")


# -- help, show_formats, formats ----------------------------------------------------------------
def test_help_lists_formats(capsys):
    assert iio.help() is None
    out = capsys.readouterr().out
    for spec in registry.PLUGINS:
        assert f"{IMAGEIO_FORMAT_NAMES.get(spec.name, spec.name)} - {spec.description}" in out
    assert ".npz" in out


@pytest.mark.parametrize("name,plugin", [("tif", "TIFF"), (".TIFF", "TIFF"),
                                         ("x.tif", "TIFF"), ("TIFF", "TIFF"),
                                         ("tifffile", "TIFF"), ("NPZ", "NPZ"),
                                         (".npz", "NPZ"), ("npy", "npy")])
def test_help_of_one_format(capsys, name, plugin):
    iio.help(name)
    out = capsys.readouterr().out
    assert out.startswith(f"{plugin} - ")
    assert "Modes: iIvV" in out


def test_help_includes_plugin_docs(capsys):
    iio.help("tif")
    assert "page" in capsys.readouterr().out  # the TIFF plugin documents its keywords


def test_help_unknown(capsys):
    with pytest.raises(ValueError, match="'bogus'"):
        iio.help("bogus")


def test_show_formats(capsys):
    assert iio.show_formats() is None
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:5] == ["NAME", "EXTENSIONS", "MODES", "INSTALLED", "DESCRIPTION"]
    body = "\n".join(lines[2:])
    for spec in registry.PLUGINS:
        assert spec.name in body and spec.description in body and spec.modes in body
    assert "yes" in body
    iio.formats.show()
    assert capsys.readouterr().out.splitlines() == lines


def test_formats_object():
    names = [f.name for f in iio.formats]
    assert names == [IMAGEIO_FORMAT_NAMES.get(s.name, s.name) for s in registry.PLUGINS]
    assert [s.name for s in registry.PLUGINS] == iio.formats.get_format_names()
    assert len(iio.formats) == len(registry.PLUGINS)
    fmt = iio.formats["TIFF"]
    assert fmt.name == "TIFF" and ".tif" in fmt.extensions and fmt.modes == "iIvV"
    assert fmt.description and fmt.backend_installed()
    assert iio.formats[".npz"].name == "NPZ"
    assert "tif" in iio.formats and "bogus" not in iio.formats
    assert repr(fmt).startswith("<Format TIFF")
    assert "TIFF - " in str(iio.formats)


def test_format_doc_when_backend_missing(monkeypatch):
    _replace_spec(monkeypatch, "npz", backend="imgio_no_such_backend", extra="nothing")
    fmt = iio.formats["npz"]
    assert not fmt.backend_installed()
    assert "pip install imgio[nothing]" in fmt.doc


# -- PNG (served by the pillow plugin, when it exists) ---------------------------------------------
def test_png_read_matches_imageio():
    path = DATA / "chelsea.png"
    im = iio.imread(path)
    assert type(im) is Array and isinstance(im.meta, dict)  # imageio: plain ndarray
    np.testing.assert_array_equal(im, ref("imread", path))
    np.testing.assert_array_equal(iio.imread(path, format="PNG-PIL"), im)
    assert [g.shape for g in iio.mimread(path)] == [(300, 451, 3)]


GIF = DATA / "newtonscradle.gif"


def test_gif_v2_matches_imageio():
    im = iio.imread(GIF)  # image 0, not the frame stack (v3's index=None)
    assert type(im) is Array and im.shape == (150, 200, 3)
    np.testing.assert_array_equal(im, ref("imread", GIF))
    frames, theirs = iio.mimread(GIF), ref("mimread", GIF)
    assert len(frames) == len(theirs) == 36
    np.testing.assert_array_equal(frames[5], theirs[5])
    with iio.get_reader(GIF) as r:
        assert r.get_length() == 36 and r.format.name == "pillow"
        np.testing.assert_array_equal(r.get_next_data(), frames[0])
        assert "duration" in r.get_meta_data()


def test_png_write_and_modes(tmp_path):
    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[5:15, 10:20] = (255, 128, 0)
    data = iio.imwrite("<bytes>", rgb, format="png")
    assert data[:4] == b"\x89PNG"
    np.testing.assert_array_equal(iio.imread(data), rgb)
    iio.imwrite(tmp_path / "a.png", rgb)
    np.testing.assert_array_equal(iio.imread(tmp_path / "a.png", format="PNG-PIL"), rgb)
    # the registry says pillow holds images ("iI"), not volumes
    with pytest.raises(ValueError, match="cannot read a single volume"):
        iio.volread(tmp_path / "a.png")
    with pytest.raises(ValueError, match="cannot write multiple volumes"):
        iio.get_writer(tmp_path / "b.gif", mode="V")
    with iio.get_writer(tmp_path / "b.gif", mode="I") as w:
        for k in range(3):
            w.append_data(np.full((8, 8, 3), 60 * k, np.uint8))
    assert len(iio.mimread(tmp_path / "b.gif")) == 3


def test_progress_callbacks_for_long_reads(tmp_path):
    import tifffile
    import imgio.v2 as v2
    path = tmp_path / "series.npz"
    np.savez(path, *[np.full((3, 3), i) for i in range(5)])
    calls = []
    images = v2.mimread(path, progress=lambda done, total: calls.append((done, total)))
    assert len(images) == 5 and calls == [(i, 5) for i in range(1, 6)]
    folder = tmp_path / "slices"
    folder.mkdir()
    for i in range(4):
        tifffile.imwrite(folder / f"z{i}.tif", np.full((4, 4), i, np.uint8))
    calls.clear()
    vol = v2.volread(folder, progress=lambda done, total: calls.append((done, total)))
    assert vol.shape == (4, 4, 4) and calls[-1] == (4, 4) and len(calls) == 4
