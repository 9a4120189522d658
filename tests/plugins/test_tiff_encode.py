"""imgio.plugins.tiff.encode: plain TIFF volumes written straight from the array (issue 21).

tifffile is the oracle twice: it reads every file back (pixels, series shape,
tags), and files written by ``tifffile.TiffWriter`` with the same options must
carry the same tags (strip offsets/byte counts and Software aside).  Through
the plugin, the same write with the encoder switched off (``IMGIO_TIFF_ENCODER=0``,
the tifffile path) must read back with the same properties and metadata.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
import tifffile
from hypothesis import given, settings
from hypothesis import strategies as st

import imgio.v2
import imgio.v3 as iio
from imgio.plugins.tiff import encode
from imgio.plugins.tiff.encode import TiffEncoder, covered

from ..pairwise import pairwise

DTYPES = ["u1", "u2", "u4", "u8", "i1", "i2", "i4", "i8", "f2", "f4", "f8"]
#: tags whose values differ by layout or by who wrote the file
LAYOUT_TAGS = {273, 279, 305}


def _data(shape, dtype, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 120, shape)
    yy = np.indices(shape)[-2] if len(shape) >= 2 else 0
    return (base + yy % 7).astype(dtype)  # some redundancy for zlib to find


def _encode(path, images, options, bigtiff=False):
    with open(path, "w+b") as fh:
        enc = TiffEncoder(fh, bigtiff=bigtiff, fallback=lambda append=False: tifffile.TiffWriter(
            fh, append=append, bigtiff=bigtiff))
        for image in images:
            enc.write(image, **options)
        enc.close()


def _tifffile(path, images, options, bigtiff=False):
    with tifffile.TiffWriter(path, bigtiff=bigtiff) as tw:
        for image in images:
            tw.write(image, **options)


def _summary(path):
    with tifffile.TiffFile(path) as tif:
        tags = [{t.code: t.value for t in p.tags if t.code not in LAYOUT_TAGS} for p in tif.pages]
        series = [(s.shape, s.dtype, s.kind, s.axes) for s in tif.series]
        arrays = [s.asarray() for s in tif.series]
        return tags, series, arrays, tif.is_bigtiff


def _same_as_tifffile(tmp_path, images, options, bigtiff=False):
    mine, theirs = tmp_path / "encoder.tif", tmp_path / "tifffile.tif"
    _encode(mine, images, options, bigtiff)
    _tifffile(theirs, images, options, bigtiff)
    got, want = _summary(mine), _summary(theirs)
    assert got[0] == want[0]  # every tag of every page
    assert got[1] == want[1] and got[3] == want[3] == bigtiff
    for a, b, image in zip(got[2], want[2], images):
        np.testing.assert_array_equal(a, image)
        np.testing.assert_array_equal(b, image)
    with tifffile.TiffFile(mine) as tif:
        assert tif.pages[0].software == "imgio"
    return os.path.getsize(mine), os.path.getsize(theirs)


# -- the encoder against tifffile, pairwise over the factors --------------------------------
SHAPES = [(33, 47), (3, 40, 50), (2, 3, 17, 29), (5, 16, 16, 3), (2, 9, 11, 4), (1, 8, 8)]
ROWS = pairwise(DTYPES, SHAPES, ["<", ">"], [None, "zlib"], [False, True], ["c", "view"])


@pytest.mark.parametrize("dtype, shape, order, compression, bigtiff, layout", ROWS)
def test_encoder_writes_what_tifffile_writes(tmp_path, dtype, shape, order, compression,
                                             bigtiff, layout):
    rgb = len(shape) >= 3 and shape[-1] in (3, 4)
    if rgb:
        dtype = "u1" if dtype[0] in "ui" else dtype  # RGB(A) of any sample type is valid
    image = _data(shape, np.dtype(dtype).newbyteorder(order))
    if layout == "view":  # not C-contiguous: written a block at a time
        image = np.concatenate([image, image], axis=-2 if rgb else -1)
        image = image[..., ::2, :] if rgb else image[..., ::2]
        assert not image.flags.c_contiguous
    options = {"photometric": "rgb" if rgb else "minisblack"}
    if compression:
        options["compression"] = compression
    assert covered(image, options)
    mine, theirs = _same_as_tifffile(tmp_path, [image], options, bigtiff)
    assert mine <= theirs


@settings(max_examples=40, deadline=None)
@given(dtype=st.sampled_from(DTYPES), pages=st.integers(1, 4), length=st.integers(1, 70),
       width=st.integers(5, 90), level=st.sampled_from([None, 1, 6, 9]),
       res=st.sampled_from([None, (2.5, 4.0), (1 / 3, 0.125)]),
       unit=st.sampled_from([None, "CENTIMETER", "inch", 1]))
def test_encoder_zlib_levels_and_resolution(tmp_path_factory, dtype, pages, length, width,
                                            level, res, unit):
    tmp_path = tmp_path_factory.mktemp("enc")
    image = _data((pages, length, width), dtype)
    options = {"photometric": "minisblack", "compression": "zlib", "resolution": res,
               "resolutionunit": unit}
    if level is not None:
        options["compressionargs"] = {"level": level}
    mine, theirs = _same_as_tifffile(tmp_path, [image], options)
    assert mine <= theirs  # tifffile encodes with the same libdeflate call


def test_threaded_zlib_crosses_the_threshold(tmp_path, monkeypatch):
    """Large enough for several encoding tasks on every worker; same bytes as one thread."""
    monkeypatch.setattr(encode, "TASK_BYTES", 1 << 20)  # more tasks than the 2 * 2 in flight
    image = _data((6, 700, 1024), "u2")
    assert image.nbytes > 2 * encode.THREADS_ABOVE and image.nbytes > 4 * encode.TASK_BYTES
    options = {"photometric": "minisblack", "compression": "zlib", "maxworkers": 2}
    mine, theirs = _same_as_tifffile(tmp_path, [image], options)
    assert mine <= theirs
    one = tmp_path / "one.tif"
    _encode(one, [image], {**options, "maxworkers": 1})
    assert one.read_bytes() == (tmp_path / "encoder.tif").read_bytes()


def test_large_uncompressed_in_write_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(encode, "WRITE_BLOCK", 1 << 16)  # many blocks, also non-contiguous
    image = _data((4, 300, 256), ">u2")
    _same_as_tifffile(tmp_path, [image], {"photometric": "minisblack"})
    _same_as_tifffile(tmp_path, [image[:, ::-1]], {"photometric": "minisblack"})
    rgb = np.ascontiguousarray(_data((2, 3, 40, 64, 3), "u1").transpose(1, 0, 2, 3, 4))
    view = rgb.transpose(1, 0, 2, 3, 4)  # pages in a different order: blocks of 2 of 6 pages
    monkeypatch.setattr(encode, "WRITE_BLOCK", 2 * 40 * 64 * 3 + 5)
    for compression in (None, "zlib"):
        _same_as_tifffile(tmp_path, [view], {"photometric": "rgb", "compression": compression})


def test_several_series_and_contiguous_frames(tmp_path):
    a, b = _data((3, 20, 30), "u2"), _data((17, 19), "f4")
    _same_as_tifffile(tmp_path, [a, b], {"photometric": "minisblack"})
    frames = [_data((16, 24), "i2", seed=i) for i in range(5)]
    opts = {"photometric": "minisblack", "contiguous": True, "metadata": None}
    for path, writer in ((tmp_path / "e.tif", None), (tmp_path / "t.tif", tifffile)):
        with open(path, "w+b") as fh:
            w = (TiffEncoder(fh, bigtiff=True, fallback=None) if writer is None
                 else tifffile.TiffWriter(fh, bigtiff=True))
            for i, f in enumerate(frames):
                w.write(f, **opts, **({"description": "pending"} if i == 0 else {}))
            w.close()
    got, want = _summary(tmp_path / "e.tif"), _summary(tmp_path / "t.tif")
    assert got[0] == want[0] and got[1] == want[1]
    np.testing.assert_array_equal(got[2][0], np.stack(frames))


@pytest.mark.parametrize("options", [
    {"photometric": "minisblack", "compression": "lzw"},
    {"photometric": "minisblack", "compression": "zlib", "predictor": True},
    {"photometric": "minisblack", "tile": (16, 16)},
    {"photometric": "minisblack", "extratags": [(65000, "s", 0, "x", True)]},
])
def test_not_covered_goes_to_tifffile_even_after_a_fast_series(tmp_path, options):
    first, second = _data((2, 32, 32), "u2"), _data((3, 32, 32), "u2", seed=1)
    assert covered(first, {"photometric": "minisblack"}) and not covered(second, options)
    path = tmp_path / "mixed.tif"
    _encode(path, [first], {"photometric": "minisblack"})  # alone: all by the encoder
    with open(path, "w+b") as fh:
        enc = TiffEncoder(fh, bigtiff=False, fallback=lambda append=False: tifffile.TiffWriter(
            fh, append=append))
        enc.write(first, photometric="minisblack")
        enc.write(second, **options)
        enc.close()
    with tifffile.TiffFile(path) as tif:
        assert [s.shape for s in tif.series] == [first.shape, second.shape]
        np.testing.assert_array_equal(tif.series[0].asarray(), first)
        np.testing.assert_array_equal(tif.series[1].asarray(), second)


@pytest.mark.parametrize("image, options", [
    (np.zeros((4, 4), bool), {"photometric": "minisblack"}),
    (np.zeros((4, 4), np.complex64), {"photometric": "minisblack"}),
    (np.zeros(5, np.uint8), {}),
    (np.zeros((0, 4), np.uint8), {"photometric": "minisblack"}),
    (np.zeros((4, 4, 3), np.uint8), {"photometric": "minisblack"}),
    (np.zeros((2, 4, 1), np.uint8), {"photometric": "minisblack"}),
    (np.zeros((4, 4), np.uint8), {"photometric": "rgb"}),
    (np.zeros((4, 4), np.uint8), {"photometric": "minisblack", "description": "mine"}),
    (np.zeros((4, 4), np.uint8), {"photometric": "minisblack", "compression": "deflate"}),
    (np.zeros((4, 4), np.uint8), {"photometric": "minisblack", "compression": "zlib",
                                  "compressionargs": {"level": 6, "strategy": 1}}),
])
def test_covered_refuses_what_tifffile_must_write(image, options):
    assert not covered(image, options)


# -- through the plugin: the encoder and the tifffile path read back the same ----------------
def _both_paths(tmp_path, monkeypatch, write):
    fast, slow = tmp_path / "fast.tif", tmp_path / "slow.tif"
    write(fast)
    monkeypatch.setenv("IMGIO_TIFF_ENCODER", "0")
    write(slow)
    monkeypatch.delenv("IMGIO_TIFF_ENCODER")
    with tifffile.TiffFile(fast) as tif:
        assert tif.pages[0].software == "imgio"
    with tifffile.TiffFile(slow) as tif:
        assert tif.pages[0].software == "tifffile.py"
    return fast, slow


def _drop_layout(meta):
    """Metadata without what differs by layout, by writer or at random (OME's UUID)."""
    if isinstance(meta, dict):
        return {k: _drop_layout(v) for k, v in meta.items() if k not in (
            "StripOffsets", "StripByteCounts", "Software", "software", "UUID")}
    return meta


WRITES = [
    ("volume u2", lambda p: iio.imwrite(p, _data((4, 30, 40), "u2")), {}),
    ("zlib f4", lambda p: iio.imwrite(p, _data((3, 30, 40), "f4"), compression="zlib"), {}),
    ("rgb u1", lambda p: iio.imwrite(p, _data((2, 20, 30, 3), "u1")), {}),
    ("2-D i2 spacing", lambda p: iio.imwrite(p, _data((30, 40), "i2"), spacing=(0.5, 0.25),
                                             axes="YX", ome=False), {}),
    ("3-D i4 spacing zlib", lambda p: iio.imwrite(p, _data((3, 30, 40), "i4"), axes="ZYX",
                                                  spacing=(2.0, 0.5, 0.25), units="um",
                                                  ome=False, compression="zlib"), {}),
    ("v2 volwrite", lambda p: imgio.v2.volwrite(p, _data((5, 20, 20), "u2")), {}),
    ("v2 append_data", lambda p: _v2_append(p), {"index": ...}),
    ("v3 append", lambda p: _v3_append(p), {}),
    ("v3 append ome", lambda p: _v3_append(p, ome=True), {}),
]


def _v2_append(path):
    with imgio.v2.get_writer(path) as w:
        for i in range(4):
            w.append_data(_data((20, 30), "u2", seed=i))


def _v3_append(path, ome=None):
    with iio.imopen(path, "w") as f:
        for i in range(4):
            f.append(_data((20, 30), "u2", seed=i), spacing=(1.0, 0.5, 0.5), axes="ZYX",
                     ome=ome)


@pytest.mark.parametrize("name, write, read", WRITES, ids=[w[0] for w in WRITES])
def test_plugin_reads_back_the_same_either_way(tmp_path, monkeypatch, name, write, read):
    fast, slow = _both_paths(tmp_path, monkeypatch, write)
    np.testing.assert_array_equal(iio.imread(fast, **read), iio.imread(slow, **read))
    a, b = iio.improps(fast, **read), iio.improps(slow, **read)
    assert (a.shape, a.dtype, a.spacing, a.units, a.axes) == \
        (b.shape, b.dtype, b.spacing, b.units, b.axes)
    assert _drop_layout(iio.immeta(fast)) == _drop_layout(iio.immeta(slow))


def test_durable_keyword_fsyncs(tmp_path, monkeypatch):
    calls = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append(fd) or real(fd))
    monkeypatch.delenv("IMGIO_DURABLE", raising=False)
    iio.imwrite(tmp_path / "a.tif", _data((2, 8, 8), "u2"))
    assert calls == []
    iio.imwrite(tmp_path / "b.tif", _data((2, 8, 8), "u2"), durable=True)
    assert len(calls) == 2  # the temporary file, then the folder
    np.testing.assert_array_equal(iio.imread(tmp_path / "b.tif"), _data((2, 8, 8), "u2"))


def test_over_an_existing_file_and_failure_keeps_it(tmp_path):
    path = tmp_path / "v.tif"
    iio.imwrite(path, _data((2, 8, 8), "u2"))
    iio.imwrite(path, _data((3, 9, 9), "f4"), compression="zlib")
    np.testing.assert_array_equal(tifffile.imread(path), _data((3, 9, 9), "f4"))
    with pytest.raises(Exception):
        iio.imwrite(path, np.zeros((2, 4, 4), object))
    np.testing.assert_array_equal(tifffile.imread(path), _data((3, 9, 9), "f4"))
    assert sorted(os.listdir(tmp_path)) == ["v.tif"]


def test_file_objects_the_encoder_cannot_position_go_to_tifffile(tmp_path):
    image = _data((2, 8, 8), "u2")
    fallback = lambda append=False: None  # noqa: E731
    with open(tmp_path / "a.tif", "ab") as fh:  # O_APPEND: pwrite would append
        assert encode.open_encoder(fh, "shaped", {"bigtiff": False}, fallback) is None
    import io
    assert encode.open_encoder(io.BytesIO(), "shaped", {}, fallback) is None
    with open(tmp_path / "b.tif", "w+b") as fh:
        assert encode.open_encoder(fh, "imagej", {}, fallback) is None
        assert encode.open_encoder(fh, "shaped", {"byteorder": ">"}, fallback) is None
        assert isinstance(encode.open_encoder(fh, "shaped", {"bigtiff": True}, fallback),
                          TiffEncoder)
    with open(tmp_path / "c.tif", "w+b") as fh:  # a TIFF inside a file, after other bytes
        fh.write(b"prefix--")
        iio.imwrite(fh, image, extension=".tif")
    with open(tmp_path / "c.tif", "rb") as fh:
        fh.seek(8)
        np.testing.assert_array_equal(tifffile.imread(fh), image)
