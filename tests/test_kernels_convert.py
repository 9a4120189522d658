"""``to_uint`` (the one conversion kernel) against its NumPy twin and against imageio.

Designs, not grids: the dtype x shape x layout x bitdepth space is covered pairwise
(every pair of values of any two factors in some case), Hypothesis draws further
arrays, and a few arrays are large enough to cross each threshold of the wrapper
without monkeypatching: above 256 Ki items the scaling pass runs in threads, above
2 Mi items the min/max pass too; contiguous floats take the kernel's min/max pass
(strided floats and integers NumPy's), and float16 is converted in 4 MiB chunks.
"""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from imageio.core.util import image_as_uint

from imgio import _kernels, _reference
from imgio.errors import DTypeError, ShapeError


def _pairwise():
    # tests/ is not a package and pytest runs with --import-mode=importlib
    import importlib.util
    from pathlib import Path
    spec = importlib.util.spec_from_file_location(
        "imgio_tests_pairwise", Path(__file__).with_name("pairwise.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.pairwise


pairwise = _pairwise()

DTYPES = ["u1", "u2", "u4", "u8", "i1", "i2", "i4", "i8", "f2", "f4", "f8", "?"]
SHAPES = [(0, 3), (1, 1), (7,), (5, 9), (4, 6, 3), (2, 3, 4, 5)]
LAYOUTS = ["C", "F", "strided", "reversed", "readonly", "unaligned"]


def _layout(a, layout):
    if layout == "F":
        return np.asfortranarray(a)
    if layout == "strided" and a.ndim:
        big = np.zeros(tuple(2 * s for s in a.shape), a.dtype)
        big[tuple(slice(None, None, 2) for _ in a.shape)] = a
        return big[tuple(slice(None, None, 2) for _ in a.shape)]
    if layout == "reversed" and a.ndim:
        return a[::-1].copy()[::-1]
    if layout == "readonly":
        a = a.copy()
        a.flags.writeable = False
        return a
    if layout == "unaligned" and a.itemsize > 1:
        buf = np.zeros(a.nbytes + 1, np.uint8)
        b = np.frombuffer(buf.data, dtype=a.dtype, count=a.size, offset=1).reshape(a.shape)
        b[...] = a  # frombuffer of a writable buffer is writable
        return b
    return a


def _data(dtype, shape, kind="range", seed=0):
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind == "b":
        return rng.random(shape) < 0.5
    if dt.kind == "f":
        x = rng.random(shape)
        if kind == "range":
            x = x * 600 - 100
        return x.astype(dt)
    info = np.iinfo(dt)
    # a quarter of the type's range, so imageio's (max - min) does not overflow
    lo, hi = int(info.min) // 4, int(info.max) // 4
    return rng.integers(lo, hi, shape, dtype=dt.newbyteorder("="), endpoint=True).astype(dt)


def _quiet(f, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return f(*args, **kwargs)


def _imageio(a, bitdepth):
    """imageio's answer, or None where it raises (a documented difference)."""
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("ignore")
        try:
            return image_as_uint(a, bitdepth=bitdepth)
        except (ValueError, TypeError, FloatingPointError, AssertionError):
            return None


def _cases():
    for dtype in DTYPES:
        for order in "<>":
            if np.dtype(dtype).itemsize == 1 and order == ">":
                continue
            for kind in (("unit", "range") if dtype.startswith("f") else ("range",)):
                yield pytest.param(order + dtype if dtype != "?" else dtype, kind,
                                   id=f"{order}{dtype}-{kind}")


@pytest.mark.parametrize("dtype,kind,shape,layout,bitdepth", [
    pytest.param(c.values[0], c.values[1], shape, layout, bitdepth,
                 id=f"{c.id}-{shape}-{layout}-{bitdepth}")
    for c, shape, layout, bitdepth in pairwise(list(_cases()), SHAPES, LAYOUTS, [8, 16])])
def test_to_uint_matches_twin_and_imageio(dtype, kind, shape, layout, bitdepth):
    a = _layout(_data(dtype, shape, kind), layout)
    got = _quiet(_kernels.to_uint, a, bitdepth)
    ref = _reference.to_uint(a, bitdepth)
    assert got.dtype == np.dtype(f"u{bitdepth // 8}") and got.shape == a.shape
    np.testing.assert_array_equal(got, ref)
    if a.size and a.dtype.kind != "b":
        # imageio reads non-native byte orders by their str(); compare values
        expected = _imageio(a.astype(a.dtype.newbyteorder("=")), bitdepth)
        lo = float(a.min())
        constant_out_of_range = lo == float(a.max()) and not 0 <= lo < 2 ** bitdepth
        if expected is not None and not constant_out_of_range:
            np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("dtype", ["f4", "f8", "f2"])
@pytest.mark.parametrize("bitdepth", [8, 16])
def test_to_uint_float_grid_matches_imageio(dtype, bitdepth):
    """Every float32 step near the rounding boundaries, and the [0, 1] endpoints."""
    top = 2 ** bitdepth - 1
    k = np.arange(top + 1, dtype=np.float64)
    grid = np.concatenate([k / top, (k + 0.5) / top, (k + 0.4999) / top, (k + 0.5001) / top])
    unit = np.clip(grid, 0, 1).astype(dtype)
    assert np.array_equal(_quiet(_kernels.to_uint, unit, bitdepth), _imageio(unit, bitdepth))
    wide = (grid * 700 - 3).astype(dtype)
    assert np.array_equal(_quiet(_kernels.to_uint, wide, bitdepth), _imageio(wide, bitdepth))


def test_to_uint_passthrough_and_warnings():
    a = np.arange(6, dtype=np.uint8).reshape(2, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _kernels.to_uint(a) is a
        b = np.arange(6, dtype=np.uint16)
        assert _kernels.to_uint(b, 16) is b
    assert _quiet(_kernels.to_uint, b, None).dtype == np.uint8  # None means 8, as imageio
    with pytest.warns(UserWarning, match=r"^Lossy conversion from float64 to uint8\. "
                      r"Range \[0, 1\]\. Convert image to uint8"):
        _kernels.to_uint(np.linspace(0, 1, 5))
    with pytest.warns(UserWarning, match=r"from uint16 to uint8\. Losing 8 bits"):
        _kernels.to_uint(np.arange(5, dtype=np.uint16))
    with pytest.warns(UserWarning, match=r"from int16 to uint16\. Range \[-3, 4\]"):
        _kernels.to_uint(np.arange(-3, 5, dtype=np.int16), 16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # constant in range: no warning, like imageio
        assert _kernels.to_uint(np.full(4, 7.0)).tolist() == [7] * 4


def test_to_uint_byteswapped_same_type_is_copied():
    a = np.arange(300, 310, dtype=">u2")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = _kernels.to_uint(a, 16)
    assert got.dtype == np.dtype("=u2") and got.tolist() == list(range(300, 310))


def test_to_uint_nan_and_inf():
    a = np.array([np.nan, 0.0, 0.5, 1.0])
    with pytest.warns(UserWarning, match="NaN written as 0"):
        assert _kernels.to_uint(a).tolist() == [0, 0, 127, 255]  # 127.999999999
    b = np.array([-np.inf, 0.0, 2.0, 4.0, np.inf, np.nan])
    with pytest.warns(UserWarning, match=r"Range \[0.0, 4.0\]\..*saturated"):
        assert _kernels.to_uint(b).tolist() == [0, 0, 127, 255, 255, 0]
    with pytest.warns(UserWarning, match="NaN"):
        assert _kernels.to_uint(np.full((2, 2), np.nan), 16).tolist() == [[0, 0], [0, 0]]
    with pytest.warns(UserWarning, match="saturated"):
        assert _kernels.to_uint(np.array([np.inf, -np.inf, 3.0])).tolist() == [255, 0, 3]
    np.testing.assert_array_equal(_quiet(_kernels.to_uint, b), _reference.to_uint(b))


def test_to_uint_documented_differences():
    # imageio raises on +-inf, an empty image, and bool ranges; overflows int16 ranges
    assert _quiet(_kernels.to_uint, np.zeros((0, 4))).shape == (0, 4)
    assert _quiet(_kernels.to_uint, np.array([True, False])).tolist() == [255, 0]
    assert _quiet(_kernels.to_uint, np.array([True, True])).tolist() == [1, 1]
    full = np.array([-32768, 32767], np.int16)
    assert _quiet(_kernels.to_uint, full).tolist() == [0, 255]
    # a constant out of range saturates (imageio wraps around in astype)
    with pytest.warns(UserWarning, match=r"Value 300 clipped to \[0, 255\]"):
        assert _kernels.to_uint(np.full(3, 300, np.int32)).tolist() == [255] * 3
    f32 = np.array([-3e38, 3e38], np.float32)  # float32 range overflows to inf
    assert _quiet(_kernels.to_uint, f32).tolist() == [0, 255]


@pytest.mark.parametrize("tail", [5.0, -0.5, np.inf, np.nan, 1.0])
@pytest.mark.parametrize("dtype", ["f4", ">f8"])
def test_to_uint_one_value_out_of_unit_range(tail, dtype):
    """A single late value outside [0, 1] switches the whole image to min..max."""
    a = np.concatenate([np.linspace(0, 1, 199), [tail], np.linspace(1, 0, 50)]).astype(dtype)
    for x in (a, a.reshape(25, 10)[:, ::2], a.reshape(10, 25).T):
        got = _quiet(_kernels.to_uint, x)
        np.testing.assert_array_equal(got, _reference.to_uint(x))
        if np.isfinite(tail):
            np.testing.assert_array_equal(got, _imageio(x.astype(x.dtype.newbyteorder("=")), 8))


def test_to_uint_out():
    a = np.linspace(0, 1, 12).reshape(3, 4)
    out = np.zeros((3, 4), np.uint8)
    res = _quiet(_kernels.to_uint, a, out=out)
    assert res is out and out.tolist() == _reference.to_uint(a).tolist()
    out_f = np.zeros((4, 3), np.uint16).T
    _quiet(_kernels.to_uint, a, 16, out=out_f)
    np.testing.assert_array_equal(out_f, _reference.to_uint(a, 16))
    u8 = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert _kernels.to_uint(u8, out=out) is out and (out == u8).all()


def test_to_uint_errors_are_readable():
    with pytest.raises(DTypeError, match="needs real numbers or bool, not complex128"):
        _kernels.to_uint(np.zeros(3, complex))
    with pytest.raises(DTypeError, match="not <U1"):
        _kernels.to_uint(np.array(["a"]))
    with pytest.raises(DTypeError, match="not object"):
        _kernels.to_uint(np.array([None]))
    with pytest.raises(ValueError, match="Bitdepth must be either 8 or 16, not 12"):
        _kernels.to_uint(np.zeros(3), 12)
    with pytest.raises(ShapeError, match=r"out has shape \(2,\)"):
        _kernels.to_uint(np.zeros(3), out=np.zeros(2, np.uint8))
    with pytest.raises(DTypeError, match="out has dtype uint16"):
        _kernels.to_uint(np.zeros(3), out=np.zeros(3, np.uint16))
    ro = np.zeros(3, np.uint8)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        _kernels.to_uint(np.zeros(3), out=ro)


# -- arrays large enough to cross the wrapper's thresholds (no monkeypatching) ----------
def _big(dtype, n, kind, seed=7):
    rng = np.random.default_rng(seed)
    x = rng.random(n)
    if kind == "range":
        x = x * 9 - 2
    a = x.astype(np.dtype(dtype).newbyteorder("=")).astype(dtype)
    if kind == "nan-inf":
        a[::1009] = np.nan
        a[5] = np.inf
        a[-3] = -np.inf
    return a


@pytest.mark.parametrize("dtype,n,kind,shape", [
    # threads for the scaling pass (> 256 Ki items), one-thread min/max pass
    ("f4", 300_000, "range", (600, 500)),
    ("<f8", 300_000, "unit", (300_000,)),
    (">i4", 400_000, "range", (20, 100, 200)),
    ("u4", 300_000, "range", (500, 600)),
    # both passes in threads (> 2 Mi items), NaN and infinities included
    ("f8", 2_200_000, "range", (1100, 2000)),
    (">f8", 2_200_000, "nan-inf", (2_200_000,)),
    ("f8", 2_200_000, "nan-inf", (2000, 1100)),
    # float16: 4 MiB chunks of float32
    ("f2", 3_000_000, "range", (1000, 3000)),
])
def test_to_uint_large_arrays_cross_the_thresholds(dtype, n, kind, shape):
    if np.dtype(dtype).kind in "iu":
        a = ((np.arange(n) * 7919) % 50_000).astype(dtype).reshape(shape)
    else:
        a = _big(dtype, n, kind).reshape(shape)
    assert a.size >= _kernels._PARALLEL_ITEMS
    for view in (a, a[::-1] if a.ndim == 1 else a[:, ::2]):
        for bitdepth in (8, 16):
            np.testing.assert_array_equal(_quiet(_kernels.to_uint, view, bitdepth),
                                          _reference.to_uint(view, bitdepth))


def test_large_array_crosses_the_minmax_threshold():
    a = _big("f8", 2_200_000, "range")
    assert a.size > _kernels._PARALLEL_MINMAX_ITEMS
    assert a.astype("f2").nbytes > _kernels._CHUNK_BYTES


@pytest.mark.parametrize("special", [np.nan, np.inf, -np.inf])
def test_strided_floats_take_numpys_minmax_and_keep_the_nan_inf_rules(special):
    a = _big("f8", 600_000, "range").reshape(600, 1000)
    a[7, 10] = special
    view = a[:, ::2]  # not contiguous: NumPy's min/max, then the kernel's slow pass
    assert not (view.flags.c_contiguous or view.flags.f_contiguous)
    np.testing.assert_array_equal(_quiet(_kernels.to_uint, view, 8),
                                  _reference.to_uint(view, 8))


@settings(max_examples=150, deadline=None)
@given(hnp.arrays(dtype=st.sampled_from(["<f4", ">f8", "<f8", "<i2", ">i4", "<u2", ">u4",
                                         "|u1", "|i1", "<f2", "|b1"]),
                  shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=7)),
       st.sampled_from([8, 16]), st.sampled_from([1, 2, -1]))
def test_property_to_uint_matches_twin(arr, bitdepth, step):
    arr = arr[::step]
    np.testing.assert_array_equal(_quiet(_kernels.to_uint, arr, bitdepth),
                                  _reference.to_uint(arr, bitdepth))


@settings(max_examples=150, deadline=None)
def _finite_arrays(dtype):
    dt = np.dtype(dtype)
    elements = (hnp.from_dtype(dt, allow_nan=False, allow_infinity=False, min_value=-1e4,
                               max_value=1e4) if dt.kind == "f" else hnp.from_dtype(dt))
    return hnp.arrays(dt, hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=7),
                      elements=elements)


@given(st.sampled_from(["f4", "f8", "i1", "i2", "i4", "u1", "u2", "u4", "u8"]).flatmap(
    _finite_arrays), st.sampled_from([8, 16]))
def test_property_to_uint_matches_imageio(arr, bitdepth):
    expected = _imageio(arr, bitdepth)
    lo = float(arr.min())
    if lo == float(arr.max()) and not 0 <= lo < 2 ** bitdepth:
        return  # a constant out of range: imageio wraps around, imgio saturates
    if expected is not None:
        np.testing.assert_array_equal(_quiet(_kernels.to_uint, arr, bitdepth), expected)


# -- the dispatched C loops (AVX-512 / AVX2 / baseline) of contiguous float rows -------
def _boundary_values(dtype, scale, lo=0.0, rng=1.0):
    """Inputs whose scaled value lands on or next to ``k + 0.5 - 0.499999999``:
    where one rounding (an FMA) instead of imageio's two would change the result."""
    k = np.arange(int(scale) + 1, dtype=np.float64)
    centre = (k + 0.500000001) / scale * rng + lo
    vals = [centre]
    for _ in range(3):
        vals.append(np.nextafter(vals[-1], np.inf))
    v = vals[0]
    for _ in range(3):
        v = np.nextafter(v, -np.inf)
        vals.append(v)
    return np.concatenate(vals).astype(dtype)


@pytest.mark.parametrize("dtype", ["f8", "f4"])
@pytest.mark.parametrize("bitdepth", [8, 16])
def test_simd_rows_round_like_imageio_at_the_boundaries(dtype, bitdepth):
    top = 2.0 ** bitdepth - 1
    unit = np.clip(_boundary_values(dtype, top), 0, 1).astype(dtype)
    ranged = np.concatenate([_boundary_values(dtype, top, -3.0, 7.0),
                             np.array([-3.0, 4.0], dtype)])  # min -3, max 4: range 7
    for a in (unit, ranged):
        assert a.size > 64  # many full SIMD blocks, and a tail
        np.testing.assert_array_equal(_quiet(_kernels.to_uint, a, bitdepth),
                                      _imageio(a, bitdepth))


@pytest.mark.parametrize("dtype", ["f8", "f4"])
@pytest.mark.parametrize("where", [0, 15, 16, 17, "last"])
def test_simd_minmax_sees_nan_and_inf_in_every_lane(dtype, where):
    # 40 MiB of f8 (20 of f4): the kernel's own min/max pass, in two threads
    n = 5_000_003
    a = _big(dtype, n, "range")
    i = n - 1 if where == "last" else where
    for special in (np.nan, np.inf, -np.inf):
        b = a.copy()
        b[i] = special
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            got = _kernels.to_uint(b, 8)
        np.testing.assert_array_equal(got, _reference.to_uint(b, 8))
        msg = str(w[0].message)
        assert ("NaN written as 0." in msg) == bool(np.isnan(special))
        assert ("+-inf saturated." in msg) == bool(np.isinf(special))


def test_every_minmax_isa_this_cpu_has_gives_the_same_answers():
    from imgio._ext import convert as cv
    isas = []
    for isa in ("avx512f", "avx2", "sse2", "c"):
        try:
            cv._force_simd_isa(isa)
            isas.append(isa)
        except ValueError:
            pass
    assert isas  # sse2 on every x86-64, "c" elsewhere
    rng = np.random.default_rng(12)
    try:
        for isa in isas:
            cv._force_simd_isa(isa)
            for dtype in ("f8", "f4"):
                for n in (1, 7, 63, 64, 65, 1000, 4099):
                    a = (rng.random(n) * 5 - 2).astype(dtype)
                    for special in (None, np.nan, np.inf, -np.inf):
                        b = a.copy()
                        if special is not None:
                            b[rng.integers(n)] = special
                        lohi = np.array([np.inf, -np.inf], dtype)
                        flags = np.zeros(4, np.int64)
                        cv.minmax2(b.reshape(1, -1), False, lohi, flags)
                        finite = b[np.isfinite(b)]
                        if finite.size and (special is None or np.isnan(special)):
                            assert (lohi[0], lohi[1]) == (finite.min(), finite.max()), isa
                        if np.isfinite(lohi).all():  # else the wrapper re-folds
                            assert bool(flags[1]) == (special is not None
                                                      and np.isnan(special))
                        np.testing.assert_array_equal(_quiet(_kernels.to_uint, b, 8),
                                                      _reference.to_uint(b, 8))
    finally:
        cv._force_simd_isa("auto")
    assert cv.simd_isa() == isas[0]
