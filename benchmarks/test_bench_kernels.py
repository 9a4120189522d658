"""Kernels against the best plain-NumPy way and their peers: time and peak memory.

Bottleneck's rule: a kernel stays only if it beats the best NumPy way on its real
workload, measured here side by side (each group holds ``test_imgio_*`` and the
``test_numpy_*`` way; ``benchmarks/compare.py`` prints the ratio):

- ``to_uint`` against a blockwise NumPy on all cores (``_numpy_to_uint`` below:
  one band per core, 2 MiB blocks, reused temporaries) and imageio's
  ``image_as_uint``; issue 21's target is imgio <= 0.8x the blockwise NumPy.
  imgio wins by fusing: one read for min and max together, one loop for
  subtract/divide/multiply/round/saturate/narrow (AVX-512/AVX2 clones picked at
  load time), the second pass walked back to front so its first blocks come from
  the L3 the first pass left warm;
- ``copy_frame`` (a checked ``np.copyto``) and ``stack_frames`` (a streamed
  ``np.copyto`` per frame) against bare ``np.copyto`` and ``np.stack`` of a list:
  they are the NumPy way plus O(1) checks, so the targets are "no slower";
- ``tiffparse.byteswap`` (the fast TIFF path's in-place swap) against
  ``ndarray.byteswap(inplace=True)``;
- ``tiffparse.untile`` against a reshape/transpose ``np.copyto``.

Removed because NumPy or imagecodecs won (same machine, loaded, 2 cores):
``bool_to_uint8`` (37x slower than ``np.multiply`` on a uint8 view), ``to_native``
(2.4x slower than ``astype``), the strided ``copy_frame`` byte kernel (1.46 ms vs
0.24 ms for ``np.copyto``; contiguous: a tie), the TIFF predictor decoders
(imagecodecs ``delta_decode`` 0.27 ms vs 1.62 ms for 1024x1024 u2;
``floatpred_decode`` 8.7 ms vs 7.9 ms f4, within noise, so imagecodecs' is used),
and the uncalled ``planar_to_interleaved``/``interleaved_to_planar``/``classify_shape``.

CI runs these at modest sizes (``pytest benchmarks --benchmark-disable`` runs each
once).  ``IMGIO_BENCH_FULL=1`` switches to the sizes of issue 4:

- ``to_uint``: float64 64x1024x1024 -> uint8 (512 MiB in, 64 MiB out) against
  ``imageio.core.util.image_as_uint``; target >= 3x faster, peak extra memory
  <= 1.25x the output.
- stacking: 256 frames of 1024x1024 uint16 (512 MiB) against ``np.stack`` of a
  list; target peak <= 1.1x the volume, and no slower.

Peak memory is measured with ``tracemalloc`` (NumPy reports its buffers to it) and
asserted, since it does not depend on machine load; timings are reported only.

Shape validation is pure Python: a Cython ``is_batch``/``classify_shape`` was
measured at 86 ns / 179 ns against 749 ns / 2.9 us in Python (same run, loaded
2-core machine).  The saving, about 1 us per written image, is noise next to
``np.asarray`` and any file I/O, so the Cython version was not kept.
"""
import logging
import os
import tracemalloc
import warnings

import numpy as np
import pytest

from concurrent.futures import ThreadPoolExecutor

from imgio import _kernels, _reference
from imgio._ext import tiffparse as _tp

FULL = os.environ.get("IMGIO_BENCH_FULL") == "1"
CONVERT_SHAPE = (64, 1024, 1024) if FULL else (32, 512, 512)
STACK_SHAPE = (256, 1024, 1024) if FULL else (64, 256, 256)

from imageio.core.util import image_as_uint  # noqa: E402

_WORKERS = os.cpu_count() or 1
_POOL = ThreadPoolExecutor(_WORKERS)
#: 2 MiB of float64: a block and its temporary stay in L2 (2 MiB per core here);
#: 1, 2 and 4 MiB measured within noise at 512 MiB, 256 KiB clearly slower
_BLOCK_ITEMS = 1 << 18


def _bands(n):
    """One contiguous band of ``range(n)`` per core."""
    step = -(-n // _WORKERS)
    return [(i, min(i + step, n)) for i in range(0, n, step)]


def _numpy_to_uint(x, bitdepth=8):
    """The best plain-NumPy ``to_uint`` of a C-contiguous, finite float array.

    One band per core on a thread pool (NumPy releases the GIL in its loops), each
    band walked in 2 MiB blocks so the data of the second ufunc of a block come
    from the cache:

    - pass 1: ``np.min`` then ``np.max`` of each block (the second read hits L2);
    - pass 2: ``np.subtract``/``np.divide``/``np.multiply`` into one reused
      block-sized float64 temporary per band (``np.multiply`` alone for data in
      [0, 1]), then ``np.add(t, 0.499999999, out=out_block, casting="unsafe")``,
      which adds and truncates into the uint8 output in one ufunc call.

    That is imageio's arithmetic (``(x - lo) / (hi - lo) * top``, two roundings,
    ``+ 0.499999999`` and truncation), so the result equals ``to_uint``'s; no clip
    is needed on finite data (every value lands in ``[0, top + 0.5)``).  Not
    ``np.rint``: it rounds half to even, imageio and imgio round half up.  NaN and
    inf handling is left out, which favours the peer.
    """
    top = 2.0 ** bitdepth - 1
    flat = x.reshape(-1)
    out = np.empty(flat.shape, np.uint8 if bitdepth == 8 else np.uint16)
    bands = _bands(flat.size)

    def minmax(band):
        a, b = band
        los, his = [], []
        for i in range(a, b, _BLOCK_ITEMS):
            v = flat[i:min(i + _BLOCK_ITEMS, b)]
            los.append(np.min(v))
            his.append(np.max(v))
        return min(los), max(his)

    parts = list(_POOL.map(minmax, bands))
    lo, hi = min(p[0] for p in parts), max(p[1] for p in parts)
    unit = lo >= 0 and hi <= 1
    rng, lo = float(hi - lo), float(lo)  # the range in the input's precision, as imageio

    def convert(band):
        a, b = band
        t = np.empty(min(_BLOCK_ITEMS, b - a))
        for i in range(a, b, _BLOCK_ITEMS):
            j = min(i + _BLOCK_ITEMS, b)
            v, tt = flat[i:j], t[:j - i]
            if unit:
                np.multiply(v, top, out=tt)
            else:
                np.subtract(v, lo, out=tt)
                np.divide(tt, rng, out=tt)
                np.multiply(tt, top, out=tt)
            np.add(tt, 0.499999999, out=out[i:j], casting="unsafe")

    list(_POOL.map(convert, bands))
    return out.reshape(x.shape)


@pytest.fixture(scope="module", autouse=True)
def _quiet_imageio():
    logger = logging.getLogger("imageio")
    level = logger.level
    logger.setLevel(logging.ERROR)  # image_as_uint logs "Lossy conversion" per call
    yield
    logger.setLevel(level)


def _to_uint(x):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return _kernels.to_uint(x, 8)


def _peak(f, *args):
    """(result, peak bytes allocated while ``f`` ran)."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        res = f(*args)
        return res, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# -- to_uint ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def floats():
    return np.random.default_rng(0).random(CONVERT_SHAPE) * 3 - 1  # the min..max rule


@pytest.fixture(scope="module")
def unit_floats():
    return np.random.default_rng(1).random(CONVERT_SHAPE)  # the [0, 1] rule


GROUP = "to_uint f8 {}x{}x{} -> u1".format(*CONVERT_SHAPE)


@pytest.mark.benchmark(group=GROUP + " range")
def test_imgio_to_uint_range(benchmark, floats):
    out = benchmark(_to_uint, floats)
    assert out.dtype == np.uint8 and out.shape == floats.shape


@pytest.mark.benchmark(group=GROUP + " range")
def test_imageio_image_as_uint_range(benchmark, floats):
    out = benchmark(image_as_uint, floats, 8)
    assert out.dtype == np.uint8


@pytest.mark.benchmark(group=GROUP + " range")
def test_numpy_blockwise_to_uint_range(benchmark, floats):
    out = benchmark(_numpy_to_uint, floats)
    np.testing.assert_array_equal(out, _to_uint(floats))


@pytest.mark.benchmark(group=GROUP + " [0,1]")
def test_numpy_blockwise_to_uint_unit(benchmark, unit_floats):
    out = benchmark(_numpy_to_uint, unit_floats)
    np.testing.assert_array_equal(out, _to_uint(unit_floats))


@pytest.mark.benchmark(group=GROUP + " [0,1]")
def test_imgio_to_uint_unit(benchmark, unit_floats):
    out = benchmark(_to_uint, unit_floats)
    assert out.dtype == np.uint8


@pytest.mark.benchmark(group=GROUP + " [0,1]")
def test_imageio_image_as_uint_unit(benchmark, unit_floats):
    out = benchmark(image_as_uint, unit_floats, 8)
    assert out.dtype == np.uint8


@pytest.mark.parametrize("which", ["range", "unit"])
def test_to_uint_peak_memory(floats, unit_floats, which, record_property):
    x = floats if which == "range" else unit_floats
    out, ours = _peak(_to_uint, x)
    _, theirs = _peak(image_as_uint, x, 8)
    record_property("imgio_peak_over_output", ours / out.nbytes)
    record_property("imageio_peak_over_output", theirs / out.nbytes)
    print(f"\nto_uint {which} {x.shape}: peak extra memory imgio {ours / out.nbytes:.3f}x, "
          f"imageio {theirs / out.nbytes:.2f}x the output ({out.nbytes / 2**20:.0f} MiB)")
    assert ours <= 1.25 * out.nbytes


# -- stacking -----------------------------------------------------------------------
class _Frames:
    """Frames made on demand (as a reader yields them), with a length hint."""

    def __init__(self, shape, dtype=np.uint16):
        self.n, self.shape, self.dtype, self.i = shape[0], shape[1:], dtype, 0

    def __iter__(self):
        return self

    def __length_hint__(self):
        return self.n - self.i

    def __next__(self):
        if self.i == self.n:
            raise StopIteration
        self.i += 1
        return np.full(self.shape, self.i, self.dtype)


def _np_stack(frames):
    return np.stack(list(frames))


@pytest.mark.parametrize("impl", ["imgio", "numpy"])
def test_stack_peak_memory(impl, record_property):
    f = _kernels.stack_frames if impl == "imgio" else _np_stack
    vol, peak = _peak(f, _Frames(STACK_SHAPE))
    assert vol.shape == STACK_SHAPE and vol[-1, 0, 0] == STACK_SHAPE[0]
    record_property("peak_over_volume", peak / vol.nbytes)
    print(f"\nstack {impl} {STACK_SHAPE} u2: peak {peak / vol.nbytes:.3f}x the volume "
          f"({vol.nbytes / 2**20:.0f} MiB)")
    if impl == "imgio":
        assert peak <= 1.1 * vol.nbytes


GROUP_STACK = "stack {}x{}x{} u2 from a reader".format(*STACK_SHAPE)


@pytest.mark.benchmark(group=GROUP_STACK)
def test_imgio_stack_frames_streamed(benchmark):
    vol = benchmark(lambda: _kernels.stack_frames(_Frames(STACK_SHAPE)))
    assert vol.shape == STACK_SHAPE


@pytest.mark.benchmark(group=GROUP_STACK)
def test_numpy_stack_list_streamed(benchmark):
    vol = benchmark(lambda: _np_stack(_Frames(STACK_SHAPE)))
    assert vol.shape == STACK_SHAPE


# -- copy_frame: the folder plugin's copy of a decoded slice into the volume -----------
FRAME_SHAPE = (2048, 2048) if FULL else (512, 512)
GROUP_COPY = "copy_frame u2 {}x{} into a volume slice".format(*FRAME_SHAPE)
GROUP_COPY_BOX = "copy_frame u2 {}x{} region (strided) into a volume slice".format(*FRAME_SHAPE)


@pytest.fixture(scope="module")
def frame_and_volume():
    frame = np.random.default_rng(4).integers(0, 65535, FRAME_SHAPE, dtype=np.uint16)
    return frame, np.empty((4,) + FRAME_SHAPE, np.uint16)


@pytest.mark.benchmark(group=GROUP_COPY)
def test_imgio_copy_frame(benchmark, frame_and_volume):
    frame, vol = frame_and_volume
    benchmark(_kernels.copy_frame, vol[1], frame)
    np.testing.assert_array_equal(vol[1], frame)


@pytest.mark.benchmark(group=GROUP_COPY)
def test_numpy_copyto_frame(benchmark, frame_and_volume):
    frame, vol = frame_and_volume
    benchmark(np.copyto, vol[2], frame)


@pytest.mark.benchmark(group=GROUP_COPY_BOX)
def test_imgio_copy_frame_box(benchmark, frame_and_volume):
    frame, vol = frame_and_volume
    box = (slice(1, None, 2), slice(3, None, 2))  # image[box] of a region read
    benchmark(_kernels.copy_frame, vol[1, 1::2, 3::2], frame[box])
    np.testing.assert_array_equal(vol[1, 1::2, 3::2], frame[box])


@pytest.mark.benchmark(group=GROUP_COPY_BOX)
def test_numpy_copyto_frame_box(benchmark, frame_and_volume):
    frame, vol = frame_and_volume
    benchmark(np.copyto, vol[2, 1::2, 3::2], frame[1::2, 3::2])


# -- the fast TIFF path's kernels ------------------------------------------------------
SWAP_SHAPE = (2048, 2048) if FULL else (1024, 1024)
GROUP_SWAP = "byteswap u2 {}x{} in place".format(*SWAP_SHAPE)


@pytest.fixture(scope="module")
def u2_image():
    return np.random.default_rng(2).integers(0, 65535, SWAP_SHAPE, dtype=np.uint16)


@pytest.mark.benchmark(group=GROUP_SWAP)
def test_imgio_byteswap(benchmark, u2_image):
    buf = u2_image.copy()
    flat = buf.reshape(-1).view(np.uint8)
    benchmark(_tp.byteswap, flat, 2)


@pytest.mark.benchmark(group=GROUP_SWAP)
def test_numpy_byteswap(benchmark, u2_image):
    buf = u2_image.copy()
    benchmark(buf.byteswap, True)


TILE_IMAGE = (4000, 4000) if FULL else (2000, 2000)
TILE = (256, 256)
GROUP_TILE = "untile {}x{} u2 from {}x{} tiles".format(*TILE_IMAGE, *TILE)


@pytest.fixture(scope="module")
def tile_buffers():
    (h, w), (tl, tw) = TILE_IMAGE, TILE
    down, across = -(-h // tl), -(-w // tw)
    tiles = np.random.default_rng(3).integers(0, 255, down * across * tl * tw * 2,
                                              dtype=np.uint8)
    return tiles, np.empty(h * w * 2, np.uint8), down, across


def _numpy_untile(tiles, out, down, across):
    (h, w), (tl, tw) = TILE_IMAGE, TILE
    v = tiles.reshape(down, across, tl, tw, 2).transpose(0, 2, 1, 3, 4)
    np.copyto(out.reshape(h, w, 2), v.reshape(down * tl, across * tw, 2)[:h, :w])


@pytest.mark.benchmark(group=GROUP_TILE)
def test_imgio_untile(benchmark, tile_buffers):
    tiles, out, down, across = tile_buffers
    benchmark(_tp.untile, tiles, out, *TILE_IMAGE, *TILE, 2)
    ref = np.empty_like(out)
    _numpy_untile(tiles, ref, down, across)
    np.testing.assert_array_equal(out, ref)


@pytest.mark.benchmark(group=GROUP_TILE)
def test_numpy_untile(benchmark, tile_buffers):
    tiles, out, down, across = tile_buffers
    benchmark(_numpy_untile, tiles, out, down, across)


# -- shape validation (pure Python; see the module docstring) -----------------------
@pytest.mark.benchmark(group="shape validation")
def test_is_batch(benchmark):
    a = np.zeros((64, 64, 3), np.uint8)
    assert benchmark(_kernels.is_batch, a) is False


@pytest.mark.benchmark(group="shape validation")
def test_check_image(benchmark):
    a = np.zeros((64, 64, 3), np.uint8)
    assert benchmark(lambda: _kernels.check_image(a, kind="image")) is a


def test_twins_agree_at_benchmark_size(floats):
    np.testing.assert_array_equal(_to_uint(floats[:2]), _reference.to_uint(floats[:2]))
