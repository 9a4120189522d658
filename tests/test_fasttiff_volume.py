"""The fast path's compressed volumes: shaped zlib stacks read page by page on all cores.

A file whose first page carries a shaped description of N compressed pages,
every page stored like the first, is served by
:func:`imgio.plugins.tiff.fastpath.read_simple` (and so by ``imgio.v3.imread``
and ``imgio.v2.volread``) and must equal ``tifffile.imread``; anything else
about its pages declines it; damage in any page raises CorruptFileError naming
the file.  Pairwise layouts plus one volume large enough for the threaded
decoder (over ``_THREAD_MIN`` compressed bytes and several tasks).
"""
from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
import tifffile

import imgio.v2 as v2
import imgio.v3 as iio
from imgio.errors import CorruptFileError
from imgio.plugins.tiff import fastpath as _fasttiff

from tests.pairwise import pairwise

LAYOUTS = {
    "dtype": ["u1", "u2", "i4", "f4", "f8"],
    "segments": ["strips", "one strip", "tiles"],
    "predictor": [False, True],
    "byteorder": ["<", ">"],
    "bigtiff": [False, True],
    "rgb": [False, True],
}


def _volume(dtype: str, shape, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return (rng.standard_normal(shape) * 100).astype(dt)
    return rng.integers(0, min(np.iinfo(dt).max, 60000), shape, dtype=dt, endpoint=True)


def _cases():
    for row in pairwise(*LAYOUTS.values()):
        case = dict(zip(LAYOUTS, row))
        if case["rgb"] and np.dtype(case["dtype"]).kind == "f":
            case["rgb"] = False
        yield case


@pytest.mark.parametrize("case", list(_cases()), ids=lambda c: "-".join(map(str, c.values())))
def test_volume_matches_tifffile(tmp_path, case):
    shape = (3, 37, 53) + ((3,) if case["rgb"] else ())
    vol = _volume(case["dtype"], shape)
    kw = dict(compression="zlib", byteorder=case["byteorder"], bigtiff=case["bigtiff"],
              photometric="rgb" if case["rgb"] else "minisblack")
    if case["segments"] == "tiles":
        kw["tile"] = (16, 32)
    elif case["segments"] == "strips":
        kw["rowsperstrip"] = 5
    else:
        kw["rowsperstrip"] = 37
    if case["predictor"]:
        kw["predictor"] = True
    path = tmp_path / "vol.tif"
    tifffile.imwrite(path, vol, **kw)
    assert _fasttiff.why_not(path) is None
    got = _fasttiff.read_simple(path)
    ref = tifffile.imread(path)
    assert got.dtype == ref.dtype and got.shape == ref.shape == shape
    np.testing.assert_array_equal(got, ref)
    out = np.zeros_like(ref)
    assert _fasttiff.read_simple(path, out=out) is out
    np.testing.assert_array_equal(out, ref)


def test_large_volume_is_decoded_on_threads_and_equals_tifffile(tmp_path, monkeypatch):
    vol = _volume("u2", (6, 256, 384), seed=3)       # ~1.1 MiB compressed: threaded
    path = tmp_path / "big.tif"
    tifffile.imwrite(path, vol, compression="zlib", predictor=True, rowsperstrip=16)
    monkeypatch.setattr(_fasttiff, "_TASK_BYTES", 64 << 10)   # many tasks
    monkeypatch.setattr(_fasttiff, "_workers", lambda: 3)
    threads = []
    real = _fasttiff._Decoder._work

    def spy(self, todo):
        import threading
        threads.append(threading.get_ident())
        return real(self, todo)
    monkeypatch.setattr(_fasttiff._Decoder, "_work", spy)
    np.testing.assert_array_equal(iio.imread(path), vol)
    assert len(threads) == 3 and len(set(threads)) >= 2   # the caller and helpers
    np.testing.assert_array_equal(v2.volread(path), vol)
    # a bad checksum in the last page: the file is named, the segment too
    raw = bytearray(path.read_bytes())
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[5]
        o, c = page.dataoffsets[-1], page.databytecounts[-1]
    raw[o + c - 1] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptFileError, match="big.tif.*segment 95 ") as exc:
        _fasttiff.read_simple(path)
    assert "does not inflate" in str(exc.value)
    with pytest.raises(CorruptFileError, match="big.tif"):
        iio.imread(path)


def _write(path, vol, **kw):
    kw.setdefault("photometric", "minisblack")
    kw.setdefault("compression", "zlib")
    tifffile.imwrite(path, vol, **kw)


def test_declined_volumes(tmp_path):
    vol = _volume("u2", (3, 20, 24))
    path = tmp_path / "v.tif"
    _write(path, vol, compression=None)           # the plugin's contiguous read
    assert _fasttiff.why_not(path) == "more than one page"
    _write(path, vol, metadata=None)              # no shaped description
    assert _fasttiff.why_not(path) == "more than one page"
    with tifffile.TiffWriter(path) as tw:         # two series: a page past the volume
        tw.write(vol, compression="zlib", photometric="minisblack")
        tw.write(vol[0], compression="zlib", photometric="minisblack")
    assert _fasttiff.why_not(path) == "more than one page"
    with tifffile.TiffWriter(path) as tw:         # page 2 stored otherwise
        tw.write(vol[:2], compression="zlib", photometric="minisblack",
                 metadata={"shape": list(vol.shape)}, contiguous=False)
        tw.write(vol[2], compression="zlib", photometric="minisblack", predictor=True,
                 metadata=None)
    info = _fasttiff.parse(path)
    assert info["reason"] in ("page 2 is not stored like page 0", "more than one page")
    assert _fasttiff.read_simple(path) is None
    np.testing.assert_array_equal(iio.imread(path), tifffile.imread(path))


def test_page_with_a_differing_tag_is_declined(tmp_path):
    vol = _volume("u2", (3, 20, 24))
    path = tmp_path / "v.tif"
    _write(path, vol, rowsperstrip=5)
    raw = bytearray(path.read_bytes())
    with tifffile.TiffFile(path) as tif:
        tag = tif.pages[1].tags["RowsPerStrip"]
        pos = tag.valueoffset
    struct.pack_into("<I", raw, pos, 4)               # page 1 claims 4 rows per strip
    path.write_bytes(bytes(raw))
    assert _fasttiff.parse(path)["reason"] == "page 1 is not stored like page 0"
    assert _fasttiff.read_simple(path) is None


def test_damaged_later_page_raises(tmp_path):
    vol = _volume("u2", (3, 20, 24))
    path = tmp_path / "v.tif"
    _write(path, vol)
    size = path.stat().st_size
    raw = bytearray(path.read_bytes())
    with tifffile.TiffFile(path) as tif:
        tag = tif.pages[2].tags["StripOffsets"]
    struct.pack_into("<I", raw, tag.valueoffset, size - 3)  # the strip runs past the end
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptFileError, match=r"v\.tif.*strip 0 of page 2 .*past the end"):
        _fasttiff.read_simple(path)


def test_wrong_length_stream_in_a_page_raises(tmp_path):
    """A page whose stream inflates to fewer bytes (good checksum) is damage too."""
    vol = _volume("u1", (2, 16, 16))
    path = tmp_path / "v.tif"
    _write(path, vol, rowsperstrip=16)
    raw = bytearray(path.read_bytes())
    with tifffile.TiffFile(path) as tif:
        o, c = tif.pages[1].dataoffsets[0], tif.pages[1].databytecounts[0]
    short = zlib.compress(vol[1].tobytes()[:200])
    assert len(short) <= c
    raw[o:o + len(short)] = short
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptFileError, match=r"v\.tif.*segment 1 inflates to 200 bytes"):
        _fasttiff.read_simple(path)
