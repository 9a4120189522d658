"""TIFF plugin: conformance suite plus series/page semantics and real files."""
from pathlib import Path

import numpy as np
import pytest
import tifffile

import imgio.v3 as iio
from imgio.errors import CorruptFileError, ShapeError
from imgio.testing import PluginConformance

DATA = Path(__file__).parent.parent / "data"


class TestTiffConformance(PluginConformance):
    plugin = "tifffile"
    extension = ".tif"

    def make_image(self, seed=0):
        rng = np.random.default_rng(seed)
        return rng.integers(0, 60000, size=(5, 24, 31), dtype=np.uint16)


class TestTiffRGBConformance(PluginConformance):
    plugin = "tifffile"
    extension = ".tiff"

    def make_image(self, seed=0):
        rng = np.random.default_rng(seed)
        return rng.integers(0, 255, size=(16, 20, 3), dtype=np.uint8)


def test_real_multipage_is_one_series():
    path = DATA / "multipage.tif"
    image = iio.imread(path)
    assert image.shape == (2, 15, 10) and image.dtype == np.uint8
    props = iio.improps(path)
    assert props.shape == image.shape  # imageio reports the page shape (15, 10)
    np.testing.assert_array_equal(image, tifffile.imread(path))


def test_real_planar_rgb():
    path = DATA / "multipage_rgb.tif"
    image = iio.imread(path)
    assert image.shape == (2, 3, 10, 10) and image.dtype == np.float64
    assert iio.improps(path).shape == image.shape
    np.testing.assert_array_equal(image, tifffile.imread(path))


def test_page_keyword_is_flat_without_index(tmp_path):
    path = tmp_path / "two.tif"
    a = np.arange(60, dtype=np.uint8).reshape(3, 4, 5)
    b = np.arange(40, dtype=np.uint8).reshape(2, 4, 5) + 100
    iio.imwrite(path, [a, b])
    # flat page 3 of the file is page 0 of series 1
    np.testing.assert_array_equal(iio.imread(path, page=3), b[0])
    np.testing.assert_array_equal(iio.imread(path, index=1, page=1), b[1])
    np.testing.assert_array_equal(iio.imread(path, index=0, page=-1), a[-1])
    assert iio.improps(path, page=3).shape == (4, 5)
    with pytest.raises(IndexError, match="page index 5"):
        iio.imread(path, page=5)
    with pytest.raises(ValueError, match="page` and `key"):
        iio.imread(path, page=0, key=0)


def test_series_of_different_shapes(tmp_path):
    path = tmp_path / "mixed.tif"
    iio.imwrite(path, [np.zeros((4, 5), np.uint8), np.ones((6, 7), np.uint8)])
    assert iio.imread(path, index=1).shape == (6, 7)
    assert [im.shape for im in iio.imiter(path)] == [(4, 5), (6, 7)]
    with pytest.raises(ShapeError, match="differ"):
        iio.imread(path, index=...)
    with pytest.raises(ShapeError):
        iio.improps(path, index=...)


def test_compression_passed_on(tmp_path):
    path = tmp_path / "z.tif"
    image = np.tile(np.arange(256, dtype=np.uint16), (64, 4))
    iio.imwrite(path, image, compression="zlib")
    assert iio.immeta(path, index=0)["compression"] == 8  # COMPRESSION.ADOBE_DEFLATE
    np.testing.assert_array_equal(iio.imread(path), image)


def test_file_level_metadata_and_ome(tmp_path):
    path = tmp_path / "x.ome.tif"
    tifffile.imwrite(path, np.zeros((3, 8, 9), np.uint16), ome=True,
                     metadata={"axes": "ZYX", "PhysicalSizeX": 0.5})
    meta = iio.immeta(path)
    assert meta["is_ome"] is True
    assert isinstance(meta["ome_metadata"], dict)  # parsed, never a crash
    assert meta["byteorder"] in "<>"


def test_corrupt_ifd_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.tif"
    path.write_bytes(b"II*\x00" + (10**9).to_bytes(4, "little") + b"\x00" * 32)
    with pytest.raises(CorruptFileError, match="bad.tif"):
        iio.imread(path)


def test_resolution_gives_spacing(tmp_path):
    path = tmp_path / "res.tif"
    tifffile.imwrite(path, np.zeros((8, 8), np.uint8), resolution=(4.0, 2.0),
                     resolutionunit="CENTIMETER")
    props = iio.improps(path)
    assert props.spacing == pytest.approx((0.5, 0.25))
    assert props.units == ("cm", "cm")


def test_small_compressed_files_decode_on_one_thread(tmp_path, monkeypatch):
    import tifffile as tf

    from imgio.plugins.tiff import plugin as tp
    vol = (np.arange(8 * 32 * 32, dtype=np.uint16) % 977).reshape(8, 32, 32)
    small = tmp_path / "small.tif"
    # no shaped description: tifffile's series, not the fast path's volumes
    tf.imwrite(small, vol, compression="zlib", metadata=None)
    seen = []
    real = tf.TiffPageSeries.asarray
    monkeypatch.setattr(tf.TiffPageSeries, "asarray",
                        lambda self, *a, **k: seen.append(k.get("maxworkers")) or
                        real(self, *a, **k))
    monkeypatch.setattr(tp, "_cpu_count", lambda: 4)
    np.testing.assert_array_equal(iio.imread(small), vol)
    assert seen == [1]
    np.testing.assert_array_equal(iio.imread(small, maxworkers=3), vol)
    assert seen == [1, 3]
    monkeypatch.setattr(tp, "_SMALL_FILE", 16)  # now "large": every CPU
    np.testing.assert_array_equal(iio.imread(small), vol)
    assert seen == [1, 3, 4]


def test_raw_stack_is_read_through_imgio_io_raw(tmp_path, monkeypatch):
    """fast=False on an uncompressed contiguous series: one positioned read of its bytes,
    on the threads asked for, big-endian data swapped to native."""
    from imgio.io import raw
    vol = (np.arange(6 * 40 * 50, dtype=np.uint16) * 7).reshape(6, 40, 50)
    path = tmp_path / "raw.tif"
    tifffile.imwrite(path, vol, byteorder=">", photometric="minisblack")
    calls = []
    real = raw.pread_ranges
    monkeypatch.setattr(raw, "pread_ranges",
                        lambda fd, views, offsets, **kw: calls.append(
                            ([len(v) for v in views], kw.get("workers"))) or
                        real(fd, views, offsets, **kw))
    got = iio.imread(path, fast=False, maxworkers=2)
    np.testing.assert_array_equal(got, vol)
    assert got.dtype.isnative
    assert calls == [([vol.nbytes], 2)]


def test_raw_stack_truncated_while_reading_names_the_file(tmp_path, monkeypatch):
    """raw.Truncated (the file ends inside the pixel bytes) is CorruptFileError naming it."""
    from imgio.plugins.tiff.plugin import TifffilePlugin
    vol = np.ones((4, 64, 64), np.uint8)
    path = tmp_path / "short.tif"
    tifffile.imwrite(path, vol, photometric="minisblack")
    size = path.stat().st_size
    # the plugin checks the declared size before it reads; a data offset moved towards the
    # end of the file (as if the file shrank after that check) makes the read itself short
    monkeypatch.setattr(TifffilePlugin, "_contiguous_offset",
                        lambda self, ser: size - vol.nbytes // 2)
    with pytest.raises(CorruptFileError, match="short.tif.*truncated"):
        iio.imread(path, fast=False)


def test_tiff_package_is_light_and_the_plugin_whole():
    """``imgio.plugins.tiff`` (what the registry sniffs with) imports no backend; the
    plugin module brings the package's parts together in one class."""
    import subprocess
    import sys
    code = ("import sys; from imgio.plugins.tiff import sniff; "
            "print(sorted(m for m in ('tifffile', 'imagecodecs', 'imgio.plugins.tiff.plugin',"
            " 'imgio.plugins.tiff.writer', 'imgio.plugins.tiff.damage') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True,
                         text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
    from imgio.plugins.tiff import damage, meta, region, writer
    from imgio.plugins.tiff.plugin import TifffilePlugin
    for mixin in (damage.DamageMixin, meta.MetaMixin, region.RegionMixin, writer.WriterMixin):
        assert issubclass(TifffilePlugin, mixin)
    # every public method of the plugin contract is defined once, on one class of the package
    for name in ("read", "iter", "properties", "metadata", "write", "append", "chunks",
                 "read_region"):
        # (the composed class holds the lock wrapper of a mixin's method: same function)
        import inspect
        owners = {inspect.unwrap(vars(c)[name]) for c in TifffilePlugin.__mro__
                  if name in vars(c) and c.__module__.startswith("imgio.plugins.tiff")}
        assert len(owners) == 1, (name, owners)
