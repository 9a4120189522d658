"""TIFF for microscopy: hyperstacks, OME, physical metadata, BigTIFF, mmap, streaming.

Every file is generated here with tifffile (or patched from one), except the
real ``tests/data`` samples.  tifffile cannot write MetaMorph STK or Zeiss LSM
and no sample of either is in ``tests/data``, so their metadata paths
(``_stk_found``/``_lsm_found``) are not exercised by a real file here.
"""
from pathlib import Path

import numpy as np
import pytest
import tifffile

import imgio.v3 as iio
from imgio.errors import (CorruptFileError, DTypeError, FormatError, ImageTooLargeError,
                          ImgioError, ShapeError)
from imgio.plugins.tiff import plugin as tp
from imgio.plugins.tiff import writer as tw

DATA = Path(__file__).parent.parent / "data"


def _hyperstack():
    rng = np.random.default_rng(1)
    return rng.integers(0, 4000, size=(2, 3, 2, 8, 9), dtype=np.uint16)


# -- reading flavours --------------------------------------------------------------
def test_imagej_hyperstack_axes_spacing_units(tmp_path):
    path = tmp_path / "hyper.tif"
    data = _hyperstack()
    tifffile.imwrite(path, data, imagej=True, resolution=(1 / 0.25, 1 / 0.5),
                     metadata={"axes": "TZCYX", "spacing": 2.0, "unit": "micron",
                               "finterval": 0.5})
    image = iio.imread(path)
    np.testing.assert_array_equal(image, data)
    props = iio.improps(path)
    assert props.shape == data.shape and props.axes == "TZCYX"
    assert props.spacing == pytest.approx((0.5, 2.0, None, 0.5, 0.25))
    assert props.units == ("s", "um", None, "um", "um")
    meta = iio.immeta(path)
    assert meta["is_imagej"] and meta["imagej_metadata"]["unit"] == "micron"
    series = iio.immeta(path, index=0)
    assert series["axes"] == "TZCYX" and series["spacing"] == props.spacing


@pytest.mark.parametrize("unit", ["\\u00B5m", "um", "micron"])
def test_imagej_unit_spellings_normalise(tmp_path, unit):
    path = tmp_path / "u.tif"
    tifffile.imwrite(path, np.zeros((3, 4, 5), np.uint8), imagej=True, resolution=(2.0, 2.0),
                     metadata={"axes": "ZYX", "spacing": 1.5, "unit": unit})
    props = iio.improps(path)
    assert props.units == ("um", "um", "um")
    assert props.spacing == pytest.approx((1.5, 0.5, 0.5))


def test_imagej_pixel_unit_means_no_spacing(tmp_path):
    path = tmp_path / "px.tif"
    tifffile.imwrite(path, np.zeros((3, 4, 5), np.uint8), imagej=True,
                     metadata={"axes": "ZYX"})
    assert iio.improps(path).spacing is None


def test_ome_multi_series(tmp_path):
    path = tmp_path / "multi.ome.tif"
    a = np.arange(2 * 5 * 6, dtype=np.uint16).reshape(2, 5, 6)
    b = np.arange(3 * 4 * 7 * 3, dtype=np.uint8).reshape(3, 4, 7, 3)
    with tifffile.TiffWriter(path, ome=True) as tw:
        tw.write(a, metadata={"axes": "ZYX", "PhysicalSizeX": 0.1, "PhysicalSizeY": 0.2,
                              "PhysicalSizeZ": 1.0, "PhysicalSizeZUnit": "nm",
                              "PhysicalSizeXUnit": "nm", "PhysicalSizeYUnit": "nm"})
        tw.write(b, photometric="rgb", metadata={"axes": "TYXS", "TimeIncrement": 30,
                                                 "TimeIncrementUnit": "ms",
                                                 "PhysicalSizeX": 3.0, "PhysicalSizeY": 3.0})
    np.testing.assert_array_equal(iio.imread(path, index=0), a)
    np.testing.assert_array_equal(iio.imread(path, index=1), b)
    p0, p1 = iio.improps(path, index=0), iio.improps(path, index=1)
    assert p0.axes == "ZYX" and p0.spacing == pytest.approx((1.0, 0.2, 0.1))
    assert p0.units == ("nm", "nm", "nm")
    assert p1.shape == b.shape and p1.axes == "TYXS"
    assert p1.spacing == pytest.approx((30, 3.0, 3.0, None))
    assert p1.units == ("ms", "um", "um", None)  # OME's default length unit is µm
    meta = iio.immeta(path)
    assert meta["is_ome"] and isinstance(meta["ome_metadata"], dict)
    assert len(meta["ome_metadata"]["OME"]["Image"]) == 2
    assert [im.shape for im in iio.imiter(path)] == [a.shape, b.shape]


def test_broken_ome_xml_never_crashes(tmp_path):
    path = tmp_path / "broken.ome.tif"
    desc = '<?xml version="1.0" encoding="UTF-8"?><OME xmlns="x"><Image ID="Image:0"><Pix'
    tifffile.imwrite(path, np.ones((4, 5), np.uint8), description=desc, metadata=None,
                     resolution=(2.0, 4.0), resolutionunit="CENTIMETER")
    np.testing.assert_array_equal(iio.imread(path), np.ones((4, 5), np.uint8))
    props = iio.improps(path)
    assert props.shape == (4, 5)
    assert props.spacing == pytest.approx((0.25, 0.5))  # falls back to the resolution tags
    assert isinstance(iio.immeta(path), dict)


def test_bigtiff_small(tmp_path):
    path = tmp_path / "big.tif"
    data = np.arange(3 * 6 * 7, dtype=np.float32).reshape(3, 6, 7)
    tifffile.imwrite(path, data, bigtiff=True, photometric="minisblack")
    np.testing.assert_array_equal(iio.imread(path), data)
    assert iio.immeta(path)["is_bigtiff"] is True
    assert iio.improps(path).shape == data.shape


def test_plain_multipage_without_metadata(tmp_path):
    path = tmp_path / "plain.tif"
    frames = [np.full((6, 7), i, np.uint16) for i in range(5)]
    with tifffile.TiffWriter(path) as tw:
        for f in frames:
            tw.write(f, metadata=None, photometric="minisblack")
    image = iio.imread(path)
    assert image.shape == (5, 6, 7)
    np.testing.assert_array_equal(image, np.stack(frames))
    np.testing.assert_array_equal(iio.imread(path, page=3), frames[3])
    with iio.imopen(path, "r") as f:
        assert len(list(f.iter_pages())) == 5


@pytest.mark.parametrize("name", ["multipage.tif", "multipage_rgb.tif"])
def test_real_files_all_read_paths_agree(name):
    path = DATA / name
    expected = tifffile.imread(path)
    np.testing.assert_array_equal(iio.imread(path), expected)
    np.testing.assert_array_equal(iio.imread(path, fast=False, maxworkers=1), expected)
    out = np.empty_like(expected)
    assert iio.imread(path, out=out) is not None
    np.testing.assert_array_equal(out, expected)
    props = iio.improps(path)
    assert props.shape == expected.shape and len(props.axes) == expected.ndim


def test_big_endian_contiguous(tmp_path):
    path = tmp_path / "be.tif"
    data = np.arange(4 * 30 * 40, dtype=np.uint16).reshape(4, 30, 40)
    tifffile.imwrite(path, data, byteorder=">", photometric="minisblack")
    got = iio.imread(path)
    assert got.dtype == np.uint16
    np.testing.assert_array_equal(got, data)
    np.testing.assert_array_equal(iio.imread(path, mmap=True), data)


# -- physical metadata round trips -----------------------------------------------------
def test_imagej_roundtrip_spacing_axes_units(tmp_path):
    path = tmp_path / "vol.tif"
    vol = np.random.default_rng(0).integers(0, 60000, (6, 20, 30), dtype=np.uint16)
    iio.imwrite(path, vol, spacing=(2.0, 0.325, 0.325), axes="ZYX", units="um")
    with tifffile.TiffFile(path) as tif:  # what Fiji reads
        assert tif.is_imagej
        ij = tif.imagej_metadata
        assert ij["unit"] == "micron" and ij["spacing"] == 2.0
        xres = tif.pages[0].tags["XResolution"].value
        assert xres[1] / xres[0] == pytest.approx(0.325)
    props = iio.improps(path)
    assert props.axes == "ZYX"
    assert props.spacing == (2.0, 0.325, 0.325)
    assert props.units == ("um", "um", "um")
    np.testing.assert_array_equal(iio.imread(path), vol)


def test_imagej_roundtrip_hyperstack_with_time(tmp_path):
    path = tmp_path / "tz.tif"
    data = _hyperstack()
    iio.imwrite(path, data, spacing=(5.0, 1.0, None, 0.2, 0.2), axes="TZCYX", units="micron")
    props = iio.improps(path)
    assert props.axes == "TZCYX" and props.shape == data.shape
    assert props.spacing == (5.0, 1.0, None, 0.2, 0.2)
    assert props.units == ("s", "um", None, "um", "um")
    assert iio.immeta(path)["is_imagej"]


@pytest.mark.parametrize("how", ["extension", "keyword"])
def test_ome_roundtrip_spacing_axes_units(tmp_path, how):
    path = tmp_path / ("vol.ome.tif" if how == "extension" else "vol.tif")
    vol = np.arange(4 * 10 * 12, dtype=np.uint16).reshape(4, 10, 12)
    kw = {"ome": True} if how == "keyword" else {}
    iio.imwrite(path, vol, spacing=(1.5, 0.1, 0.2), axes="ZYX", units="um", **kw)
    meta = iio.immeta(path)
    assert meta["is_ome"] and not meta["is_imagej"]
    pixels = meta["ome_metadata"]["OME"]["Image"]["Pixels"]
    assert pixels["PhysicalSizeX"] == 0.2 and pixels["PhysicalSizeXUnit"] == "µm"
    assert pixels["PhysicalSizeZ"] == 1.5
    props = iio.improps(path)
    assert (props.axes, props.spacing, props.units) == ("ZYX", (1.5, 0.1, 0.2),
                                                        ("um", "um", "um"))
    np.testing.assert_array_equal(iio.imread(path), vol)


def test_dtype_imagej_cannot_hold_goes_ome(tmp_path):
    path = tmp_path / "f8.tif"
    vol = np.linspace(0, 1, 3 * 4 * 5).reshape(3, 4, 5)
    iio.imwrite(path, vol, spacing=(3, 1, 1), axes="ZYX", units="nm")
    assert iio.immeta(path)["is_ome"]
    props = iio.improps(path)
    assert props.spacing == (3.0, 1.0, 1.0) and props.units == ("nm",) * 3


def test_plain_tiff_keeps_spacing_when_not_imagej_or_ome(tmp_path):
    path = tmp_path / "shaped.tif"
    vol = np.zeros((3, 4, 5), np.int32)
    iio.imwrite(path, vol, spacing=(3, 0.5, 0.5), axes="ZYX", units="mm", ome=False)
    meta = iio.immeta(path)
    assert meta["is_shaped"] and not meta["is_ome"]
    props = iio.improps(path)
    assert props.spacing == (3.0, 0.5, 0.5) and props.units == ("mm",) * 3
    # plain readers see the pixel size in the resolution tags (centimetres)
    with tifffile.TiffFile(path) as tif:
        assert tif.pages[0].tags["ResolutionUnit"].value == 3


def test_spacing_shorter_than_axes_fills_last_axes(tmp_path):
    path = tmp_path / "yx.tif"
    iio.imwrite(path, np.zeros((3, 4, 5), np.uint16), spacing=(0.5, 0.25), axes="ZYX")
    props = iio.improps(path)
    assert props.spacing == (None, 0.5, 0.25)
    assert props.units == (None, "um", "um")  # units default to micrometres


def test_bad_physical_arguments(tmp_path):
    vol = np.zeros((3, 4, 5), np.uint16)
    with pytest.raises(ShapeError, match="axes"):
        iio.imwrite(tmp_path / "a.tif", vol, axes="YX", spacing=(1, 1))
    with pytest.raises(ShapeError, match="spacing"):
        iio.imwrite(tmp_path / "b.tif", vol, axes="ZYX", spacing=(1, 1, 1, 1))
    assert not list(tmp_path.iterdir())  # failed writes leave nothing behind


def test_writes_physical_flag_and_demo(tmp_path):
    assert tp.WRITES_PHYSICAL is True
    from imgio.demo import run_demo
    lines = []
    report = run_demo(str(tmp_path), shape=(4, 32, 32), out=lines.append)
    assert report["axes"] == "ZYX"
    assert report["spacing"] == (2.0, 0.325, 0.325)
    assert report["units"] == ("um", "um", "um")


# -- BigTIFF, compression -----------------------------------------------------------
def test_bigtiff_chosen_automatically(tmp_path, monkeypatch):
    monkeypatch.setattr(tw, "_BIGTIFF_ABOVE", 1000)
    vol = np.zeros((4, 20, 20), np.uint16)
    iio.imwrite(tmp_path / "plain.tif", vol)
    assert iio.immeta(tmp_path / "plain.tif")["is_bigtiff"]
    # ImageJ hyperstacks cannot be BigTIFF: the physical metadata go to OME instead
    iio.imwrite(tmp_path / "phys.tif", vol, spacing=(1, 1, 1), axes="ZYX")
    meta = iio.immeta(tmp_path / "phys.tif")
    assert meta["is_bigtiff"] and meta["is_ome"]
    assert iio.improps(tmp_path / "phys.tif").spacing == (1.0, 1.0, 1.0)
    monkeypatch.setattr(tw, "_BIGTIFF_ABOVE", 2**32)
    iio.imwrite(tmp_path / "small.tif", vol)
    assert not iio.immeta(tmp_path / "small.tif")["is_bigtiff"]


@pytest.mark.parametrize("compression", ["zlib", "zstd", "lzw"])
def test_compressed_stack_roundtrip(tmp_path, compression):
    path = tmp_path / "c.tif"
    vol = np.tile(np.arange(64, dtype=np.uint16), (8, 32, 2))
    iio.imwrite(path, vol, compression=compression, maxworkers=2,
                spacing=(1, 0.5, 0.5), axes="ZYX")
    np.testing.assert_array_equal(iio.imread(path, maxworkers=2), vol)
    np.testing.assert_array_equal(iio.imread(path, maxworkers=1), vol)
    assert iio.improps(path).spacing == (1.0, 0.5, 0.5)
    with pytest.raises(FormatError, match="memory-mapped"):
        iio.imread(path, mmap=True)


# -- memory mapping, out=, the fast seam ----------------------------------------------
def test_mmap_opens_without_reading(tmp_path):
    path = tmp_path / "m.tif"
    vol = np.arange(5 * 16 * 16, dtype=np.uint16).reshape(5, 16, 16)
    iio.imwrite(path, vol, spacing=(1, 1, 1), axes="ZYX")
    with iio.imopen(path, "r") as f:
        mapped = f.read(mmap=True)
    assert isinstance(mapped, np.memmap) and not mapped.flags.writeable
    np.testing.assert_array_equal(mapped, vol)
    del mapped


def test_out_is_filled_and_checked(tmp_path):
    path = tmp_path / "o.tif"
    vol = np.arange(3 * 40 * 50, dtype=np.uint16).reshape(3, 40, 50)
    iio.imwrite(path, vol)
    out = np.zeros_like(vol)
    with iio.imopen(path, "r") as f:
        assert f.read(out=out, fast=False) is out
    np.testing.assert_array_equal(out, vol)
    with pytest.raises(ShapeError):
        with iio.imopen(path, "r") as f:
            f.read(out=np.zeros((3, 40, 49), np.uint16), fast=False)
    with pytest.raises(DTypeError):
        with iio.imopen(path, "r") as f:
            f.read(out=np.zeros((3, 40, 50), np.int32), fast=False)


def test_fast_seam(tmp_path, monkeypatch):
    import imgio.plugins.tiff.fastpath as fasttiff
    path = tmp_path / "s.tif"
    vol = np.arange(2 * 4 * 5, dtype=np.uint8).reshape(2, 4, 5)
    iio.imwrite(path, vol)
    calls = []
    sentinel = np.full((2, 4, 5), 7, np.uint8)

    def fake(p, out=None, max_bytes=None, fd=None, head=None, size=None):
        calls.append(p)
        return sentinel

    monkeypatch.setattr(fasttiff, "read_simple", fake)
    np.testing.assert_array_equal(iio.imread(path), sentinel)
    assert calls == [str(path)]
    np.testing.assert_array_equal(iio.imread(path, fast=False), vol)
    np.testing.assert_array_equal(iio.imread(path, page=1), vol[1])
    assert len(calls) == 1  # neither fast=False nor page= goes through the seam

    def broken(p, out=None, max_bytes=None, fd=None, head=None, size=None):
        raise RuntimeError("parser bug")

    monkeypatch.setattr(fasttiff, "read_simple", broken)
    with pytest.raises(RuntimeError, match="parser bug"):  # a bug is not hidden by a fallback
        iio.imread(path)
    monkeypatch.setattr(fasttiff, "read_simple", lambda p, **kw: None)
    np.testing.assert_array_equal(iio.imread(path), vol)


# -- files that lie about their size ----------------------------------------------------
def _patch_dims(path, size):
    with tifffile.TiffFile(path) as tif:
        tags = tif.pages[0].tags
        offsets = [tags[n].valueoffset for n in ("ImageWidth", "ImageLength", "RowsPerStrip")]
        assert all(tags[n].dtype == 4 for n in ("ImageWidth", "ImageLength"))
    raw = bytearray(path.read_bytes())
    for off in offsets:
        raw[off:off + 4] = size.to_bytes(4, "little")
    path.write_bytes(bytes(raw))


def test_huge_dimensions_in_small_uncompressed_file(tmp_path):
    path = tmp_path / "liar.tif"
    tifffile.imwrite(path, np.zeros((8, 8), np.uint16), metadata=None, rowsperstrip=8)
    _patch_dims(path, 2**20)
    props = iio.improps(path)  # the header can be described ...
    assert props.shape == (2**20, 2**20)
    with pytest.raises(ImgioError, match="liar.tif") as info:  # ... but not read
        iio.imread(path)
    assert isinstance(info.value, (ImageTooLargeError, CorruptFileError))
    with iio.imopen(path, "r") as f:  # the plugin itself refuses, not only v3.imread
        with pytest.raises((ImageTooLargeError, CorruptFileError), match="liar.tif"):
            f.read()
    with pytest.raises(ImgioError):
        iio.imread(path, mmap=True)


def test_huge_dimensions_in_small_compressed_file(tmp_path):
    path = tmp_path / "bomb.tif"
    tifffile.imwrite(path, np.zeros((8, 8), np.uint16), metadata=None, rowsperstrip=8,
                     compression="zlib")
    _patch_dims(path, 2**20)
    with iio.imopen(path, "r") as f:
        # the fast parser knows deflate cannot expand 11 bytes that far: damaged
        with pytest.raises((ImageTooLargeError, CorruptFileError), match="bomb.tif"):
            f.read()
    with iio.imopen(path, "r") as f:
        with pytest.raises(ImageTooLargeError, match="bomb.tif"):
            f.read(fast=False)


def test_memory_limit_is_configurable(tmp_path, monkeypatch):
    path = tmp_path / "v.tif"
    iio.imwrite(path, np.zeros((4, 64, 64), np.uint16), compression="zlib")
    # the one documented knob (docs/limits.md), read by the plugin and the fast path alike
    from imgio.core import limits
    monkeypatch.setattr(limits, "MAX_BYTES", 1000)
    with iio.imopen(path, "r") as f:
        with pytest.raises(ImageTooLargeError, match="v.tif"):
            f.read()
        out = np.empty((4, 64, 64), np.uint16)
        f.read(out=out)  # no allocation, no limit


# -- streaming writes -----------------------------------------------------------------
@pytest.mark.parametrize("compression", [None, "zlib"])
def test_append_streams_one_series(tmp_path, compression):
    path = tmp_path / "acq.tif"
    frames = [np.full((12, 16), i, np.uint16) for i in range(7)]
    kw = {} if compression is None else {"compression": compression}
    with iio.imopen(path, "w") as f:
        for frame in frames:
            f.append(frame, **kw)
    back = iio.imread(path)
    assert back.shape == (7, 12, 16)
    np.testing.assert_array_equal(back, np.stack(frames))
    meta = iio.immeta(path)
    assert meta["n_series"] == 1 and meta["is_bigtiff"]


def test_append_keeps_physical_metadata(tmp_path):
    path = tmp_path / "acq.tif"
    with iio.imopen(path, "w") as f:
        for i in range(4):
            f.append(np.full((6, 8), i, np.uint8), spacing=(2.0, 0.5, 0.5), axes="ZYX",
                     units="um")
    props = iio.improps(path)
    assert props.shape == (4, 6, 8) and props.axes == "ZYX"
    assert props.spacing == (2.0, 0.5, 0.5) and props.units == ("um",) * 3


def test_append_rejects_mismatched_frames(tmp_path):
    path = tmp_path / "acq.tif"
    with iio.imopen(path, "w") as f:
        f.append(np.zeros((6, 8), np.uint8))
        with pytest.raises(ShapeError, match="frame 1"):
            f.append(np.zeros((6, 9), np.uint8))
        with pytest.raises(DTypeError, match="frame 1"):
            f.append(np.zeros((6, 8), np.uint16))
        f.append(np.ones((6, 8), np.uint8))
    assert iio.imread(path).shape == (2, 6, 8)


def test_v2_writer_append_data_adds_images_like_mimwrite(tmp_path):
    import imgio.v2 as v2
    path, mim = tmp_path / "v2.tif", tmp_path / "mim.tif"
    frames = [np.full((10, 11), i, np.uint16) for i in range(5)]
    with v2.get_writer(path) as w:
        for frame in frames:
            w.append_data(frame)
    v2.mimwrite(mim, frames)
    for target in (path, mim):  # one rule: one image (series) per frame, as imageio
        assert iio.imread(target).shape == (10, 11)
        back = v2.mimread(target)
        assert len(back) == 5
        np.testing.assert_array_equal(np.stack(back)[:, 0, 0], np.arange(5))
    with iio.imopen(tmp_path / "stream.tif", "w") as f:  # the streaming writer
        for frame in frames:
            f.append(frame)
    assert iio.imread(tmp_path / "stream.tif").shape == (5, 10, 11)



@pytest.mark.parametrize("compression", [None, "zlib"])
@pytest.mark.parametrize("name", ["stream.tif", "stream.ome.tif"])
def test_append_keeps_axes_spacing_and_flavour(tmp_path, compression, name):
    path = tmp_path / name
    frames = [np.full((6, 7), i, np.uint16) for i in range(5)]
    with iio.imopen(path, "w") as f:
        for i, frame in enumerate(frames):
            if i == 0:
                f.append(frame, spacing=(2.0, 0.5, 0.25), axes="ZYX", units="um",
                         compression=compression)
            else:
                f.append(frame, compression=compression)
    np.testing.assert_array_equal(iio.imread(path), np.stack(frames))
    props = iio.improps(path)
    assert props.shape == (5, 6, 7) and props.axes == "ZYX"
    assert props.spacing == pytest.approx((2.0, 0.5, 0.25))
    assert tuple(props.units) == ("um", "um", "um")
    assert iio.immeta(path)["is_ome"] is name.endswith(".ome.tif")
