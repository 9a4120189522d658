"""Folders and globs of slice files read as one volume (imgio.plugins.folder)."""
import numpy as np
import pytest
import tifffile

import imgio.v3 as iio
from imgio.errors import CorruptFileError, DTypeError, NoPluginError, ShapeError
from imgio.plugins.folder import natural_key


def _slices(n=12, shape=(9, 11), dtype=np.uint16):
    rng = np.random.default_rng(3)
    return [rng.integers(0, 200, shape).astype(dtype) for _ in range(n)]


@pytest.fixture
def stack(tmp_path):
    folder = tmp_path / "stack"
    folder.mkdir()
    slices = _slices()
    for i, s in enumerate(slices):
        tifffile.imwrite(folder / f"z{i}.tif", s, imagej=True, resolution=(4.0, 2.0),
                         metadata={"unit": "micron", "spacing": 3.0})
    (folder / "notes.txt").write_text("not an image")
    (folder / ".hidden.tif").write_bytes(b"junk")
    return folder, np.stack(slices)


def test_natural_key():
    names = ["z10.tif", "z2.tif", "Z1.tif", "z100.tif"]
    assert sorted(names, key=natural_key) == ["Z1.tif", "z2.tif", "z10.tif", "z100.tif"]


def test_folder_reads_volume_in_natural_order(stack):
    folder, expected = stack
    vol = iio.imread(folder)
    assert vol.shape == expected.shape and vol.dtype == expected.dtype
    np.testing.assert_array_equal(vol, expected)  # z2 before z10
    np.testing.assert_array_equal(iio.imread(str(folder) + "/"), expected)
    np.testing.assert_array_equal(iio.imread(folder, index=...), expected)
    np.testing.assert_array_equal(iio.imread(folder, maxworkers=1, fast=False), expected)


def test_glob(stack):
    folder, expected = stack
    np.testing.assert_array_equal(iio.imread(str(folder / "z*.tif")), expected)
    part = iio.imread(str(folder / "z1*.tif"))  # z1, z10, z11
    np.testing.assert_array_equal(part, expected[[1, 10, 11]])


def test_slices_by_index_and_iter(stack):
    folder, expected = stack
    np.testing.assert_array_equal(iio.imread(folder, index=5), expected[5])
    np.testing.assert_array_equal(iio.imread(folder, index=-1), expected[-1])
    got = list(iio.imiter(folder))
    assert len(got) == len(expected)
    np.testing.assert_array_equal(np.stack(got), expected)
    with pytest.raises(IndexError, match="out of range"):
        iio.imread(folder, index=99)


def test_volume_mode_index_zero_is_the_volume(stack):
    folder, expected = stack
    with iio.imopen(folder, "rv") as f:
        np.testing.assert_array_equal(f.read(index=0), expected)
    with iio.imopen(folder, "r") as f:
        np.testing.assert_array_equal(f.read(index=0), expected[0])


def test_v2_volread_folder(stack):
    import imgio.v2 as v2
    folder, expected = stack
    np.testing.assert_array_equal(v2.volread(folder), expected)


def test_properties_without_reading_pixels(stack, monkeypatch):
    folder, expected = stack
    from imgio.plugins import folder as fp
    monkeypatch.setattr(fp.FolderPlugin, "_read_into",
                        lambda *a, **k: pytest.fail("properties read pixels"))
    props = iio.improps(folder)
    assert props.shape == expected.shape and props.dtype == expected.dtype
    assert props.axes == "ZYX"
    assert props.spacing == pytest.approx((3.0, 0.5, 0.25))
    assert props.units == ("um", "um", "um")
    assert iio.improps(folder, index=2).shape == expected.shape[1:]
    batch = iio.improps(folder, index=...)
    assert batch.is_batch and batch.n_images == len(expected)
    meta = iio.immeta(folder)
    assert meta["n_files"] == len(expected) and meta["files"][2].endswith("z2.tif")


def test_out_parameter(stack):
    folder, expected = stack
    out = np.zeros_like(expected)
    with iio.imopen(folder, "r") as f:
        assert f.read(out=out) is out
        with pytest.raises(ShapeError):
            f.read(out=np.zeros((3, 9, 11), np.uint16))
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("kind", ["shape", "dtype"])
def test_mismatched_slice_names_the_file(tmp_path, kind):
    folder = tmp_path / "bad"
    folder.mkdir()
    for i, s in enumerate(_slices(5)):
        tifffile.imwrite(folder / f"s{i:02d}.tif", s)
    odd = np.zeros((9, 12), np.uint16) if kind == "shape" else np.zeros((9, 11), np.float32)
    tifffile.imwrite(folder / "s03.tif", odd)
    error = ShapeError if kind == "shape" else DTypeError
    with pytest.raises((ShapeError, DTypeError), match="s03.tif") as info:
        iio.imread(folder)
    assert isinstance(info.value, error)
    with pytest.raises((ShapeError, DTypeError), match="s03.tif"):
        iio.imread(folder, maxworkers=1, fast=False)


def test_compressed_and_big_endian_slices(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    slices = _slices(6)
    for i, s in enumerate(slices):
        kw = {"compression": "zlib"} if i % 2 else {"byteorder": ">"}
        tifffile.imwrite(folder / f"img_{i}.tiff", s, **kw)
    np.testing.assert_array_equal(iio.imread(folder), np.stack(slices))


def test_non_tiff_slices(tmp_path):
    folder = tmp_path / "npy"
    folder.mkdir()
    slices = _slices(4, dtype=np.float32)
    for i, s in enumerate(slices):
        np.save(folder / f"plane{i}.npy", s)
    np.testing.assert_array_equal(iio.imread(folder), np.stack(slices))
    assert iio.improps(folder).shape == (4, 9, 11)


def test_truncated_slice_is_a_clear_error(tmp_path):
    folder = tmp_path / "cut"
    folder.mkdir()
    for i, s in enumerate(_slices(3, shape=(64, 64))):
        tifffile.imwrite(folder / f"c{i}.tif", s)
    bad = folder / "c1.tif"
    bad.write_bytes(bad.read_bytes()[:4000])
    with pytest.raises((CorruptFileError, ShapeError), match="c1.tif"):
        iio.imread(folder)


def test_folder_without_images(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "readme.txt").write_text("hello")
    with pytest.raises(NoPluginError, match="empty") as info:
        iio.imread(folder)
    assert str(folder) in str(info.value) and "no image files" in str(info.value)
    with pytest.raises(NoPluginError):
        iio.improps(folder)


def test_fast_seam_used_for_slices(stack, monkeypatch):
    import imgio.plugins.tiff.fastpath as fasttiff
    folder, expected = stack
    calls = []

    def fake(path, out=None, max_bytes=None, fd=None, head=None, size=None):
        calls.append(path)
        return None  # decline: tifffile reads it

    monkeypatch.setattr(fasttiff, "read_simple", fake)
    np.testing.assert_array_equal(iio.imread(folder), expected)
    assert len(calls) == len(expected)
    calls.clear()
    iio.imread(folder, fast=False)
    assert calls == []


@pytest.mark.parametrize("side, compression, expected", [
    (64, None, 1),        # small raw slices: one thread (threads only trade the GIL)
    (64, "zlib", 4),      # compressed: inflating releases the GIL, use every CPU
    (1024, None, 4),      # 2 MiB raw slices: the copies overlap
])
def test_default_workers_follow_slice_storage(tmp_path, monkeypatch, side, compression,
                                              expected):
    from imgio.plugins import folder
    base = np.arange(side * side, dtype=np.uint16).reshape(side, side) % 251
    for i in range(3):
        tifffile.imwrite(tmp_path / f"s{i}.tif", base + i, compression=compression)
    monkeypatch.setattr(folder.os, "cpu_count", lambda: 4)
    used = []
    real = folder.ThreadPoolExecutor
    monkeypatch.setattr(folder, "ThreadPoolExecutor",
                        lambda n, *a, **k: used.append(n) or real(n, *a, **k))
    vol = iio.imread(tmp_path)
    assert vol.shape == (3, side, side) and vol[2, 0, 1] == base[0, 1] + 2
    assert used == ([] if expected == 1 else [3])  # min(workers, 3 slices)
    used.clear()
    iio.imread(tmp_path, maxworkers=2)  # the caller's choice wins
    assert used == [2]


def test_region_reads_compose_slice_plugins(tmp_path):
    """chunks()/read_region() of a folder of mixed formats: each slice through its plugin."""
    slices = _slices(n=5, shape=(20, 18), dtype=np.uint8)
    folder = tmp_path / "mixed"
    folder.mkdir()
    for i, s in enumerate(slices):
        if i % 2:
            iio.imwrite(folder / f"s{i}.png", s)
        else:
            tifffile.imwrite(folder / f"s{i}.tif", s, tile=(16, 16), compression="zlib")
    expected = np.stack(slices)
    with iio.imopen(folder, "r") as f:
        assert f.chunks() == (1, 16, 16)  # the first slice's tiles
        np.testing.assert_array_equal(f.read(), expected)
        for box in [(slice(1, 4), slice(3, 17), slice(0, 18)), (slice(0, 5), slice(0, 0), slice(0, 1)),
                    (slice(4, 5), slice(19, 20), slice(17, 18))]:
            np.testing.assert_array_equal(f.read_region(box), expected[box])
        np.testing.assert_array_equal(f.read_region((slice(2, 9), slice(0, 3)), index=1),
                                      expected[1, 2:9, :3])
        with pytest.raises(TypeError, match="unexpected keyword argument 'level'"):
            f.read_region((slice(0, 1),) * 3, level=1)


def test_region_read_names_a_mismatched_slice(tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    tifffile.imwrite(folder / "a0.tif", np.zeros((8, 8), np.uint16))
    tifffile.imwrite(folder / "a1.tif", np.zeros((9, 8), np.uint16))
    with iio.imopen(folder, "r") as f:
        with pytest.raises(ShapeError, match="a1.tif"):
            f.read_region((slice(0, 2), slice(0, 4), slice(0, 4)))
        with pytest.raises(ShapeError, match="a1.tif"):
            f.read()


def test_folder_uses_no_private_or_public_api_of_others():
    import inspect
    from imgio.plugins import folder
    text = inspect.getsource(folder)
    for banned in ("imgio.v3", "from .. import v3", "_fasttiff", "_tp.", "import tifffile",
                   "from . import tifffile", "plugins.tiff", "from .tiff", "from .hdf5",
                   "TifffilePlugin", "._tif", "_series_obj", "fastpath"):
        assert banned not in text, banned
    import re
    assert not re.search(r"\.name\s*[!=]=", text)  # no dispatch on plugin names

