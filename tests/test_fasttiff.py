"""The Cython TIFF fast path (imgio.plugins.tiff.fastpath / _ext/tiffparse) against tifffile.

* differential: every generated file the fast path serves reads exactly as
  ``tifffile.imread`` (dtype, shape, values); files it does not serve give None;
* damage: broken files raise CorruptFileError naming the file;
* fuzzing: mutated headers and IFDs never crash, hang or over-read.
"""
from __future__ import annotations

import itertools
import logging
import shutil
import struct
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from imgio.plugins.tiff import fastpath as _fasttiff
from imgio._ext import tiffparse as _tp
from imgio.errors import CorruptFileError, DTypeError, ShapeError

DATA = Path(__file__).parent / "data"
SHAPE = (37, 53)                     # odd sizes: partial strips and tiles
INT_DTYPES = ["u1", "u2", "u4", "u8", "i1", "i2", "i4", "i8"]
FLOAT_DTYPES = ["f2", "f4", "f8"]


@pytest.fixture(autouse=True)
def _quiet_tifffile():
    """tifffile logs warnings for damaged files; keep the test output readable."""
    logger = logging.getLogger("tifffile")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    yield
    logger.setLevel(level)


def _data(dtype: str, shape, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return (rng.standard_normal(shape) * 1000).astype(dt)
    info = np.iinfo(dt)
    return rng.integers(info.min, info.max, shape, dtype=dt, endpoint=True)


def _tifffile_read(path) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tifffile.imread(path)


def _assert_same(got: np.ndarray, path) -> None:
    ref = _tifffile_read(path)
    assert got.dtype == ref.dtype
    assert got.shape == ref.shape
    assert got.dtype.isnative
    np.testing.assert_array_equal(got, ref)


# -- the served corpus ---------------------------------------------------------------
def _corpus():
    """(id, array, imwrite kwargs) for every combination the fast path serves."""
    cases = []
    for byteorder, dtype, spp, layout, compression, predictor in itertools.product(
            "<>", INT_DTYPES + FLOAT_DTYPES, (1, 3, 4), ("strips", "rps5", "tiles"),
            (None, "zlib"), (False, True)):
        if predictor and (compression is None or dtype in ("u8", "i8")):
            continue  # tifffile writes no predictor there
        shape = SHAPE if spp == 1 else SHAPE + (spp,)
        kw = dict(byteorder=byteorder, compression=compression,
                  photometric="minisblack" if spp == 1 else "rgb")
        if predictor:
            kw["predictor"] = True
        if layout == "tiles":
            kw["tile"] = (16, 16)
        elif layout == "rps5":
            kw["rowsperstrip"] = 5
        if spp == 4:
            kw["extrasamples"] = ["unassalpha"]
        cid = f"{byteorder}{dtype}-s{spp}-{layout}-{compression}-p{int(predictor)}"
        cases.append(pytest.param(dtype, shape, kw, id=cid))
    # BigTIFF, both byte orders, strips and tiles, compressed and not
    for byteorder, layout, compression in itertools.product("<>", ("strips", "tiles"),
                                                           (None, "zlib")):
        kw = dict(byteorder=byteorder, bigtiff=True, compression=compression)
        if layout == "tiles":
            kw["tile"] = (16, 32)
        cases.append(pytest.param("u2", SHAPE, kw,
                                  id=f"bigtiff-{byteorder}-{layout}-{compression}"))
    # odd/edge geometry
    cases += [
        pytest.param("u2", (1, 1), {}, id="1x1"),
        pytest.param("u1", (1, 1000), {"rowsperstrip": 1}, id="one-row"),
        pytest.param("u2", (300, 7), {"rowsperstrip": 1}, id="rps1-many-strips"),
        pytest.param("f4", (64, 64), {"tile": (32, 32)}, id="exact-tiles"),
        pytest.param("u2", (256, 256), {"compression": "zlib",
                                        "compressionargs": {"level": 9}}, id="zlib9"),
        pytest.param("u2", (40, 40), {"compression": "adobe_deflate"}, id="adobe_deflate"),
        pytest.param("u2", SHAPE, {"metadata": None}, id="no-description"),
        pytest.param("u2", SHAPE, {"description": "a plain note"}, id="plain-description"),
        pytest.param("u2", SHAPE, {"imagej": True}, id="imagej-2d"),
        pytest.param("f4", SHAPE, {"imagej": True}, id="imagej-2d-float"),
        pytest.param("u1", SHAPE + (3,), {"imagej": True}, id="imagej-rgb"),
        pytest.param("u2", SHAPE, {"resolution": (2.5, 2.5), "datetime": True,
                                   "software": "test"}, id="resolution-datetime"),
    ]
    return cases


@pytest.mark.parametrize("dtype, shape, kw", _corpus())
def test_served_matches_tifffile(tmp_path, dtype, shape, kw):
    path = tmp_path / "img.tif"
    tifffile.imwrite(path, _data(dtype, shape), **kw)
    assert _fasttiff.why_not(path) is None
    got = _fasttiff.read_simple(path)
    assert got is not None
    _assert_same(got, path)
    info = _fasttiff.parse(path)
    assert info["reason"] is None and info["n_pages"] == 1
    assert info["shape"] == got.shape and info["dtype"] == got.dtype
    # the one-read plan covers exactly the uncompressed strip files, and agrees
    raw = path.read_bytes()
    plan = _tp.plan_simple(raw, len(raw))
    assert (plan is not None) == (kw.get("compression") is None and "tile" not in kw)
    if plan is not None:
        h, w, spp, _, _, bigendian, offset = plan
        assert ((h, w) if spp == 1 else (h, w, spp)) == got.shape
        assert bigendian == (info["byteorder"] == ">")
        assert offset == int(info["offsets"][0])
        assert _tp.plan_simple(raw[:8], len(raw)) is None  # IFD not in the head: ask again


def test_parse_bytes_and_path_agree(tmp_path):
    path = tmp_path / "img.tif"
    tifffile.imwrite(path, _data("u2", SHAPE), tile=(16, 16), byteorder=">",
                     compression="zlib")
    a = _fasttiff.parse(path)
    b = _fasttiff.parse(path.read_bytes())
    for key in ("width", "length", "bitspersample", "compression", "tilewidth",
                "tilelength", "byteorder", "description_kind", "shaped_shape"):
        assert a[key] == b[key]
    assert a["width"] == 53 and a["length"] == 37 and a["byteorder"] == ">"
    assert a["compression"] == 8 and a["description_kind"] == "shaped"
    np.testing.assert_array_equal(a["offsets"], b["offsets"])
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        assert a["offsets"].tolist() == list(page.dataoffsets)
        assert a["bytecounts"].tolist() == list(page.databytecounts)


def test_ifd_after_pixels_uses_whole_file(tmp_path):
    """IFD and arrays far from the head (as libtiff writes them) still parse."""
    path = tmp_path / "big.tif"
    arr = _data("u2", (200, 300))
    # strips of one row: the offset arrays do not fit the IFD, description is large
    tifffile.imwrite(path, arr, rowsperstrip=1, description="x" * 10000, metadata=None)
    got = _fasttiff.read_simple(path)
    _assert_same(got, path)
    # move the IFD to the end: rewrite with the IFD offset pointing to a copy at EOF
    raw = bytearray(path.read_bytes())
    ifd = struct.unpack_from("<I", raw, 4)[0]
    n = struct.unpack_from("<H", raw, ifd)[0]
    block = raw[ifd:ifd + 2 + 12 * n + 4]
    newoff = len(raw) + (len(raw) & 1)
    raw += b"\0" * (newoff - len(raw)) + block
    struct.pack_into("<I", raw, 4, newoff)
    path.write_bytes(bytes(raw))
    assert _fasttiff.parse(path)["ifd_offset"] == newoff
    _assert_same(_fasttiff.read_simple(path), path)


def test_real_files_are_multipage_and_declined(data_dir):
    for name, pages in (("multipage.tif", 2), ("multipage_rgb.tif", 2)):
        path = data_dir / name
        assert _fasttiff.read_simple(path) is None
        info = _fasttiff.parse(path)
        assert info["n_pages"] == pages
        assert info["reason"] == "more than one page"
        with tifffile.TiffFile(path) as tif:
            assert len(tif.pages) == pages
            assert info["width"] == tif.pages[0].imagewidth
            assert info["length"] == tif.pages[0].imagelength
            assert info["bitspersample"] == tif.pages[0].bitspersample


def test_real_file_first_page_alone_is_served(tmp_path, data_dir):
    """Cut the real files to their first page: the fast path serves them."""
    for name in ("multipage.tif", "multipage_rgb.tif"):
        src = data_dir / name
        with tifffile.TiffFile(src) as tif:
            page = tif.pages[0]
            nextpos = page.offset + 2 + 12 * len(page.tags)   # classic TIFF
            fmt = tif.byteorder + "I"
        raw = bytearray(src.read_bytes())
        struct.pack_into(fmt, raw, nextpos, 0)
        path = tmp_path / name
        path.write_bytes(bytes(raw))
        got = _fasttiff.read_simple(path)
        reason = _fasttiff.why_not(path)
        if name == "multipage_rgb.tif":   # planar RGB: declined, and it says why
            assert got is None and reason == "planar separate RGB", reason
            continue
        assert reason is None, reason
        _assert_same(got, path)


# -- files the fast path must decline ------------------------------------------------
def _write_declined(path: Path, case: str) -> None:
    a = _data("u2", SHAPE)
    if case == "multipage":
        tifffile.imwrite(path, _data("u2", (3,) + SHAPE), photometric="minisblack")
    elif case == "imagej-hyperstack":
        tifffile.imwrite(path, _data("u2", (2, 3) + SHAPE), imagej=True)
    elif case == "imagej-claims-slices":
        tifffile.imwrite(path, a, metadata=None,
                         description="ImageJ=1.53t\nimages=4\nslices=4\n")
    elif case == "ome":
        tifffile.imwrite(path, a, ome=True)
    elif case == "shaped-differs":
        tifffile.imwrite(path, a[None])
    elif case == "lzw":
        tifffile.imwrite(path, a, compression="lzw")
    elif case == "zstd":
        tifffile.imwrite(path, a, compression="zstd")
    elif case == "jpeg":
        tifffile.imwrite(path, _data("u1", SHAPE + (3,)), compression="jpeg")
    elif case == "planar-separate":
        tifffile.imwrite(path, _data("u1", (3,) + SHAPE), photometric="rgb",
                         planarconfig="separate")
    elif case == "bilevel":
        tifffile.imwrite(path, a > 30000)
    elif case == "12-bit":
        tifffile.imwrite(path, a >> 4)
        _patch_tag(path, 258, 12)
    elif case == "miniswhite":
        tifffile.imwrite(path, a, photometric="miniswhite")
    elif case == "palette":
        tifffile.imwrite(path, _data("u1", SHAPE), photometric="palette",
                         colormap=np.zeros((3, 256), "u2"))
    elif case == "complex":
        tifffile.imwrite(path, _data("f4", SHAPE).astype("c8"))
    elif case == "gray-alpha":
        tifffile.imwrite(path, _data("u1", SHAPE + (2,)), photometric="minisblack",
                         planarconfig="contig")
    elif case == "subifds":
        with tifffile.TiffWriter(path) as tif:
            tif.write(a, subifds=1)
            tif.write(a[::2, ::2], subfiletype=1)
    elif case == "reduced-subfile":
        tifffile.imwrite(path, a, subfiletype=1)
    elif case == "stk-tag":
        tifffile.imwrite(path, a, extratags=[(33628, "I", 1, 0, True)])
    elif case == "unknown-tag":
        tifffile.imwrite(path, a, extratags=[(50000, "s", 0, "private", True)])
    elif case == "volumetric":
        tifffile.imwrite(path, _data("u2", (16, 32, 32)), tile=(16, 16, 16), volumetric=True)
    elif case == "metaseries":
        tifffile.imwrite(path, a, software="MetaSeries", metadata=None,
                         description="<MetaData></MetaData>")
    elif case == "float-predictor-on-ints":
        tifffile.imwrite(path, a, compression="zlib", predictor=True)
        _patch_tag(path, 317, 3)
    elif case == "not-tiff":
        shutil.copy(DATA / "camera.png", path)
    else:  # pragma: no cover
        raise AssertionError(case)


DECLINED = ["multipage", "imagej-hyperstack", "imagej-claims-slices", "ome",
            "shaped-differs", "lzw", "zstd", "jpeg", "planar-separate", "bilevel",
            "12-bit", "miniswhite", "palette", "complex", "gray-alpha", "subifds",
            "reduced-subfile", "stk-tag", "unknown-tag", "volumetric", "metaseries",
            "float-predictor-on-ints", "not-tiff"]


@pytest.mark.parametrize("case", DECLINED)
def test_declined_returns_none(tmp_path, case):
    path = tmp_path / "img.tif"
    _write_declined(path, case)  # imagecodecs (a hard dependency) has every codec used
    assert _fasttiff.read_simple(path) is None
    raw = path.read_bytes()
    assert _tp.plan_simple(raw, len(raw)) is None
    out = np.zeros(SHAPE, "u2")
    assert _fasttiff.read_simple(path, out=out) is None
    assert not out.any()
    assert _fasttiff.why_not(path)   # a reason, never a crash


def test_non_path_inputs_are_declined(tmp_path):
    path = tmp_path / "img.tif"
    tifffile.imwrite(path, _data("u2", SHAPE))
    assert _fasttiff.read_simple(path.read_bytes()) is None
    with open(path, "rb") as f:
        assert _fasttiff.read_simple(f) is None
    assert _fasttiff.read_simple(path, out="memmap") is None
    assert _fasttiff.read_simple(str(path)) is not None


# -- out= ----------------------------------------------------------------------------
def test_out_contiguous_slice_noncontiguous_and_errors(tmp_path):
    path = tmp_path / "img.tif"
    arr = _data("i2", SHAPE + (3,))
    tifffile.imwrite(path, arr, photometric="rgb", byteorder=">", compression="zlib",
                     predictor=True)
    vol = np.zeros((3,) + arr.shape, arr.dtype)
    got = _fasttiff.read_simple(path, out=vol[1])
    assert got is vol[1] or np.shares_memory(got, vol)
    np.testing.assert_array_equal(vol[1], arr)
    assert not vol[0].any() and not vol[2].any()
    fortran = np.zeros(arr.shape, arr.dtype, order="F")
    got = _fasttiff.read_simple(path, out=fortran)
    assert got is fortran
    np.testing.assert_array_equal(fortran, arr)
    with pytest.raises(ShapeError):
        _fasttiff.read_simple(path, out=np.zeros(SHAPE, arr.dtype))
    with pytest.raises(DTypeError):
        _fasttiff.read_simple(path, out=np.zeros(arr.shape, "u2"))


# -- damage --------------------------------------------------------------------------
def _patch_tag(path: Path, code: int, value: int, *, field: str = "value") -> None:
    """Overwrite one field of a tag entry in the first IFD of a classic TIFF."""
    raw = bytearray(path.read_bytes())
    bo = "<" if raw[:2] == b"II" else ">"
    ifd = struct.unpack_from(bo + "I", raw, 4)[0]
    n = struct.unpack_from(bo + "H", raw, ifd)[0]
    for i in range(n):
        pos = ifd + 2 + 12 * i
        tag, typ, count = struct.unpack_from(bo + "HHI", raw, pos)
        if tag != code:
            continue
        if field == "count":
            struct.pack_into(bo + "I", raw, pos + 4, value)
        elif typ == 3 and count == 1:
            struct.pack_into(bo + "H", raw, pos + 8, value)
        else:
            struct.pack_into(bo + "I", raw, pos + 8, value)
        path.write_bytes(bytes(raw))
        return
    raise AssertionError(f"tag {code} not found")


def _next_ifd_pos(path: Path) -> tuple[str, int]:
    raw = path.read_bytes()
    bo = "<" if raw[:2] == b"II" else ">"
    ifd = struct.unpack_from(bo + "I", raw, 4)[0]
    n = struct.unpack_from(bo + "H", raw, ifd)[0]
    return bo, ifd + 2 + 12 * n


def _damage(path: Path, case: str) -> None:
    tifffile.imwrite(path, _data("u2", SHAPE), rowsperstrip=8)
    raw = bytearray(path.read_bytes())
    bo, nextpos = _next_ifd_pos(path)
    if case == "truncated-strip":
        path.write_bytes(bytes(raw[:-100]))
    elif case == "truncated-header":
        path.write_bytes(bytes(raw[:6]))
    elif case == "first-ifd-past-eof":
        struct.pack_into(bo + "I", raw, 4, len(raw) + 10)
        path.write_bytes(bytes(raw))
    elif case == "first-ifd-zero":
        struct.pack_into(bo + "I", raw, 4, 0)
        path.write_bytes(bytes(raw))
    elif case == "ifd-self-loop":
        struct.pack_into(bo + "I", raw, nextpos, 8)
        path.write_bytes(bytes(raw))
    elif case == "next-ifd-past-eof":
        struct.pack_into(bo + "I", raw, nextpos, 10**9)
        path.write_bytes(bytes(raw))
    elif case == "strip-offset-past-eof":
        _patch_tag(path, 273, 10**9)
    elif case == "absurd-strip-count":
        _patch_tag(path, 273, 10**9, field="count")
    elif case == "absurd-entry-count":
        ifd = struct.unpack_from(bo + "I", raw, 4)[0]
        struct.pack_into(bo + "H", raw, ifd, 60000)
        path.write_bytes(bytes(raw))
    elif case == "short-bytecount":
        _patch_tag(path, 279, 10)
    elif case == "bad-zlib":
        tifffile.imwrite(path, _data("u2", SHAPE), compression="zlib")
        with tifffile.TiffFile(path) as tif:
            off = tif.pages[0].dataoffsets[0]
        raw = bytearray(path.read_bytes())
        raw[off:off + 8] = b"\xff" * 8
        path.write_bytes(bytes(raw))
    elif case == "bigtiff-bad-header":
        tifffile.imwrite(path, _data("u2", SHAPE), bigtiff=True)
        raw = bytearray(path.read_bytes())
        raw[4] = 4
        path.write_bytes(bytes(raw))
    else:  # pragma: no cover
        raise AssertionError(case)


DAMAGED = ["truncated-strip", "truncated-header", "first-ifd-past-eof", "first-ifd-zero",
           "ifd-self-loop", "next-ifd-past-eof", "strip-offset-past-eof",
           "absurd-strip-count", "absurd-entry-count", "short-bytecount", "bad-zlib",
           "bigtiff-bad-header"]


@pytest.mark.parametrize("case", DAMAGED)
def test_damaged_raises_corrupt(tmp_path, case):
    path = tmp_path / f"{case}.tif"
    _damage(path, case)
    with pytest.raises(CorruptFileError, match=case) as info:
        _fasttiff.read_simple(path)
    assert isinstance(info.value, OSError)


def test_two_page_loop_is_multipage_for_read_and_a_loop_for_parse(tmp_path):
    path = tmp_path / "loop.tif"
    with tifffile.TiffWriter(path) as tif:
        tif.write(_data("u2", SHAPE), metadata=None)
        tif.write(_data("u2", SHAPE), metadata=None)
    with tifffile.TiffFile(path) as tif:
        first, second = tif.pages[0].offset, tif.pages[1].offset
        nextpos = second + 2 + 12 * len(tif.pages[1].tags)
    raw = bytearray(path.read_bytes())
    struct.pack_into("<I", raw, nextpos, first)
    path.write_bytes(bytes(raw))
    assert _fasttiff.read_simple(path) is None        # two pages seen: not ours
    with pytest.raises(CorruptFileError, match="loops back"):
        _fasttiff.parse(path)                          # full chain walk finds the loop


def test_page_count_limit(tmp_path):
    path = tmp_path / "many.tif"
    tifffile.imwrite(path, np.zeros((50, 8, 8), "u1"), photometric="minisblack")
    assert _fasttiff.parse(path)["n_pages"] == 50
    info = _fasttiff.parse(path, max_pages=10)
    assert info["n_pages"] == 10 and info["pages_capped"]


# -- fuzzing -------------------------------------------------------------------------
def _seed_files() -> list[bytes]:
    import io
    seeds = []
    for kw, dtype, shape in (
            (dict(rowsperstrip=8), "u2", (21, 13)),
            (dict(compression="zlib", predictor=True, byteorder=">"), "i2", (21, 13)),
            (dict(tile=(16, 16), compression="zlib"), "f4", (21, 35)),
            (dict(bigtiff=True, photometric="rgb"), "u1", (9, 11, 3)),
            (dict(bigtiff=True, byteorder=">", tile=(16, 16)), "u2", (17, 17)),
            (dict(compression="zlib", predictor=True), "f8", (9, 10))):
        buf = io.BytesIO()
        tifffile.imwrite(buf, _data(dtype, shape), **kw)
        seeds.append(buf.getvalue())
    return seeds


SEEDS = _seed_files()


def _entries(raw: bytes) -> list[int]:
    """Byte positions of the first IFD's entries (for structure-aware mutations)."""
    try:
        bo = "<" if raw[:2] == b"II" else ">"
        big = struct.unpack_from(bo + "H", raw, 2)[0] == 43
        if big:
            ifd = struct.unpack_from(bo + "Q", raw, 8)[0]
            n = min(struct.unpack_from(bo + "Q", raw, ifd)[0], len(raw) // 20)
            return [ifd + 8 + 20 * i for i in range(n)]
        ifd = struct.unpack_from(bo + "I", raw, 4)[0]
        n = min(struct.unpack_from(bo + "H", raw, ifd)[0], len(raw) // 12)
        return [ifd + 2 + 12 * i for i in range(n)]
    except (struct.error, OverflowError):
        return []


_INTERESTING = [0, 1, 2, 3, 7, 8, 15, 16, 255, 256, 4095, 65535, 2**31 - 1, 2**32 - 1,
                2**63, 2**64 - 1]

mutation = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0, 1), st.just(0)),
    st.tuples(st.just("byte"), st.floats(0, 1), st.integers(0, 255)),
    st.tuples(st.just("entry-field"), st.floats(0, 1),
              st.one_of(st.sampled_from(_INTERESTING), st.integers(0, 2**64 - 1))),
    st.tuples(st.just("entry-type"), st.floats(0, 1), st.integers(0, 20)),
    st.tuples(st.just("header-offset"), st.floats(0, 1), st.sampled_from(_INTERESTING)),
)


def _mutate(raw: bytes, muts) -> bytes:
    data = bytearray(raw)
    for kind, where, value in muts:
        if not data:
            break
        if kind == "truncate":
            data = data[:int(where * len(data))]
        elif kind == "byte":
            data[min(int(where * len(data)), len(data) - 1)] = value
        elif kind in ("entry-field", "entry-type"):
            entries = _entries(bytes(data))
            if not entries:
                continue
            pos = entries[min(int(where * len(entries)), len(entries) - 1)]
            big = data[2:4] in (b"+\0", b"\0+")
            if kind == "entry-type":
                field, size = pos + 2, 2
            else:   # count or value/offset, picked by the value's parity
                size = 8 if big else 4
                field = pos + 4 if value % 2 else pos + 4 + size
            value %= 2 ** (8 * size)
            bo = "little" if data[:2] == b"II" else "big"
            if field + size <= len(data):
                data[field:field + size] = value.to_bytes(size, bo)
        elif kind == "header-offset":
            big = data[2:4] in (b"+\0", b"\0+")
            size, pos = (8, 8) if big else (4, 4)
            bo = "little" if data[:2] == b"II" else "big"
            if pos + size <= len(data):
                data[pos:pos + size] = (value % 2 ** (8 * size)).to_bytes(size, bo)
    return bytes(data)


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(seed=st.integers(0, len(SEEDS) - 1), muts=st.lists(mutation, min_size=1, max_size=4))
def test_fuzz_mutated_files(tmp_path, seed, muts):
    data = _mutate(SEEDS[seed], muts)
    path = tmp_path / "fuzz.tif"
    path.write_bytes(data)
    start = time.perf_counter()
    try:
        got = _fasttiff.read_simple(path)
    except CorruptFileError as exc:
        assert str(path) in str(exc)
        event("corrupt")
        got = None
    else:
        event("declined" if got is None else "served")
        if got is not None:
            # an array where tifffile raises is a silent difference: a failure
            ref = _tifffile_read(path)
            assert got.dtype == ref.dtype and got.shape == ref.shape
            np.testing.assert_array_equal(got, ref)
    assert time.perf_counter() - start < 2.0
    # parse() on the bytes never crashes either
    try:
        info = _fasttiff.parse(data)
    except CorruptFileError:
        info = None
    # the one-read plan never serves what the full decision would not
    plan = _tp.plan_simple(data, len(data))
    if plan is not None:
        event("planned")
        assert info is not None and info["reason"] is None, info and info["reason"]
        assert got is not None and info["compression"] == 1
        h, w, spp = plan[:3]
        assert ((h, w) if spp == 1 else (h, w, spp)) == got.shape == info["shape"]


def test_short_caller_head_is_extended_for_the_plan(tmp_path, monkeypatch):
    # 300 one-row strips: the offset and count arrays end past the Request's
    # 1,032-byte head, but inside the parser's own 4 KiB head
    path = tmp_path / "strips.tif"
    arr = _data("u2", (300, 7))
    tifffile.imwrite(path, arr, rowsperstrip=1)
    raw = path.read_bytes()
    assert _tp.plan_simple(raw[:1032], len(raw)) is None
    assert _tp.plan_simple(raw[:4096], len(raw)) is not None
    planned = []
    real = _fasttiff._read_plain
    monkeypatch.setattr(_fasttiff, "_read_plain",
                        lambda *a: planned.append(a[-1]) or real(*a))
    with open(path, "rb") as f:
        got = _fasttiff.read_simple(path, fd=f.fileno(), head=raw[:1032], size=len(raw))
    np.testing.assert_array_equal(got, arr)
    assert len(planned) == 1


# -- damage the fast path once served silently (issue 15) -------------------------------
def _ifd_entries(raw: bytes):
    """{tag: (entry position, type, count, value field position)} of a classic LE TIFF."""
    ifd = struct.unpack("<I", raw[4:8])[0]
    n = struct.unpack("<H", raw[ifd:ifd + 2])[0]
    out = {}
    for k in range(n):
        e = ifd + 2 + 12 * k
        tag, typ, cnt = struct.unpack("<HHI", raw[e:e + 8])
        out[tag] = (e, typ, cnt, e + 8)
    return out


@pytest.mark.parametrize("offset", [0, 1, 7])
@pytest.mark.parametrize("compression", [None, "zlib"])
def test_strip_offset_in_the_header_is_damage(tmp_path, offset, compression):
    path = tmp_path / "img.tif"
    tifffile.imwrite(path, _data("u1", (8, 8)), compression=compression, metadata=None)
    raw = bytearray(path.read_bytes())
    e, typ, cnt, field = _ifd_entries(bytes(raw))[273]
    assert cnt == 1 and typ == 4
    raw[field:field + 4] = struct.pack("<I", offset)
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptFileError, match=r"inside the header \(8 bytes\)") as exc:
        _fasttiff.read_simple(path)
    assert str(path) in str(exc.value)


def _zlib_file(tmp_path, stream: bytes, shape=(16, 16)) -> Path:
    """A one-strip u1 zlib TIFF whose strip is ``stream``."""
    path = tmp_path / "z.tif"
    tifffile.imwrite(path, np.zeros(shape, "u1"), compression="zlib", metadata=None)
    raw = bytearray(path.read_bytes())
    ent = _ifd_entries(bytes(raw))
    off = struct.unpack("<I", raw[ent[273][3]:ent[273][3] + 4])[0]
    raw = raw[:off] + stream
    raw[ent[273][3]:ent[273][3] + 4] = struct.pack("<I", off)
    raw[ent[279][3]:ent[279][3] + 4] = struct.pack("<I", len(stream))
    path.write_bytes(bytes(raw))
    return path


def test_deflate_stream_is_checked_to_its_end(tmp_path):
    import zlib
    pixels = np.arange(256, dtype="u1").tobytes()
    good = zlib.compress(pixels)
    np.testing.assert_array_equal(_fasttiff.read_simple(_zlib_file(tmp_path, good)),
                                  np.frombuffer(pixels, "u1").reshape(16, 16))
    too_long = zlib.compress(pixels + b"more pixels than the strip holds")
    bad_adler = good[:-1] + bytes([good[-1] ^ 1])
    cut = good[:-3]
    for stream in (too_long, bad_adler, cut):
        path = _zlib_file(tmp_path, stream)
        with pytest.raises(CorruptFileError, match="segment 0") as exc:
            _fasttiff.read_simple(path)
        assert str(path) in str(exc.value)
        with pytest.raises(Exception):   # tifffile does not give an array either
            _tifffile_read(path)


def test_padded_last_strip_is_refused_like_tifffile(tmp_path):
    # a last strip stored at full strip size: tifffile's decoder refuses it too
    import zlib
    arr = _data("u1", (10, 8))
    path = tmp_path / "pad.tif"
    tifffile.imwrite(path, arr, compression="zlib", rowsperstrip=4, metadata=None)
    raw = bytearray(path.read_bytes())
    ent = _ifd_entries(bytes(raw))
    offs = struct.unpack("<3I", raw[struct.unpack("<I", raw[ent[273][3]:ent[273][3] + 4])[0]:][:12])
    last = zlib.compress(arr[8:].tobytes() + bytes(16))   # 4 rows stored for 2
    pos = len(raw)
    raw += last
    off_arr = struct.unpack("<I", raw[ent[273][3]:ent[273][3] + 4])[0]
    cnt_arr = struct.unpack("<I", raw[ent[279][3]:ent[279][3] + 4])[0]
    raw[off_arr + 8:off_arr + 12] = struct.pack("<I", pos)
    raw[cnt_arr + 8:cnt_arr + 12] = struct.pack("<I", len(last))
    path.write_bytes(bytes(raw))
    assert offs[0] > 0
    with pytest.raises(CorruptFileError, match="segment 2"):
        _fasttiff.read_simple(path)
    with pytest.raises(Exception, match="INSUFFICIENT_SPACE|BUF_ERROR"):
        _tifffile_read(path)


def test_broken_shaped_description_is_not_served(tmp_path):
    for desc in ('{"shape": [8, 8]!', '{"shape": [8, 08]}', '{"shape": [8, 8]} x',
                 "shape=(8, 8)x"):
        path = tmp_path / "d.tif"
        tifffile.imwrite(path, _data("u1", (8, 8)), description=desc, metadata=None)
        assert _fasttiff.read_simple(path) is None, desc
    tifffile.imwrite(path, _data("u1", (8, 8)), metadata={"axes": "YX"})
    assert _fasttiff.why_not(path) == "other description"   # tifffile's JSON: its call


def test_tile_bomb_is_refused_before_allocation(tmp_path):
    """A 3 MB file declaring a 16x16 image in one 49152x65536 zlib tile (issue 15)."""
    import tracemalloc
    import zlib
    path = tmp_path / "bomb.tif"
    tifffile.imwrite(path, np.zeros((16, 16), "u1"), tile=(16, 16), compression="zlib",
                     metadata=None)
    raw = bytearray(path.read_bytes())
    ent = _ifd_entries(bytes(raw))
    raw[ent[322][3]:ent[322][3] + 4] = struct.pack("<I", 65536)   # TileWidth
    raw[ent[323][3]:ent[323][3] + 4] = struct.pack("<I", 49152)   # TileLength
    stream = zlib.compress(bytes(3 << 20), 9)
    raw[ent[324][3]:ent[324][3] + 4] = struct.pack("<I", len(raw))
    raw[ent[325][3]:ent[325][3] + 4] = struct.pack("<I", len(stream))
    raw += stream
    path.write_bytes(bytes(raw))
    tracemalloc.start()
    try:
        with pytest.raises(CorruptFileError, match="expand far beyond") as exc:
            _fasttiff.read_simple(path, max_bytes=10**6)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(path) in str(exc.value)
    assert peak < 10**6


def test_tile_buffer_goes_through_the_guard(tmp_path):
    from imgio.errors import ImageTooLargeError
    path = tmp_path / "tiles.tif"
    arr = np.zeros((40, 40), "u2")   # 3,200 bytes in four 32x32 tiles of 8,192
    tifffile.imwrite(path, arr, tile=(32, 32), compression="zlib")
    assert _fasttiff.read_simple(path, max_bytes=8192) is not None
    with pytest.raises(ImageTooLargeError, match="tiles.tif"):
        _fasttiff.read_simple(path, max_bytes=4000)   # the image fits, its tiles do not


def test_fuzz_against_tifffile():
    """The bounded fuzz of tests/fuzz_fasttiff.py: no array where tifffile raises, no
    other pixels.  In a child process under an address-space limit (tifffile has no
    size guard).  ``IMGIO_FUZZ_N`` sets the count (default 400)."""
    import os
    import subprocess
    import sys
    n = os.environ.get("IMGIO_FUZZ_N", "400")
    proc = subprocess.run([sys.executable, "-m", "tests.fuzz_fasttiff", "--n", n],
                          cwd=Path(__file__).parent.parent, capture_output=True, text=True,
                          timeout=1200)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert f"cases {n}:" in proc.stdout and "silent differences from tifffile: 0" in proc.stdout


def test_duplicated_tag_declines(tmp_path):
    # tifffile keeps the first ImageLength, a last-wins parser would read 1 row of 20
    path = tmp_path / "dup.tif"
    tifffile.imwrite(path, _data("u2", (20, 24)), metadata=None)
    raw = bytearray(path.read_bytes())
    e = _ifd_entries(bytes(raw))[259][0]   # Compression (1) becomes a second ImageLength
    raw[e:e + 2] = struct.pack("<H", 257)
    path.write_bytes(bytes(raw))
    assert _tifffile_read(path).shape == (20, 24)
    assert _fasttiff.read_simple(path) is None
    assert "duplicated" in _fasttiff.why_not(path)


def test_imagej_value_that_is_not_a_number_declines(tmp_path):
    # tifffile keeps "1!hyperstack=true" as a string, and its ImageJ series raises
    path = tmp_path / "ij.tif"
    tifffile.imwrite(path, _data("u2", (8, 8)), metadata=None,
                     description="ImageJ=1.11a\nimages=1!hyperstack=true\nmode=grayscale")
    with pytest.raises(TypeError):
        _tifffile_read(path)
    assert _fasttiff.read_simple(path) is None
    assert _fasttiff.why_not(path) == "ImageJ hyperstack"
