"""Kernels against their peers, side by side: time (pytest-benchmark) and peak memory.

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

from imgio import _kernels, _reference

FULL = os.environ.get("IMGIO_BENCH_FULL") == "1"
CONVERT_SHAPE = (64, 1024, 1024) if FULL else (8, 256, 256)
STACK_SHAPE = (256, 1024, 1024) if FULL else (64, 256, 256)

image_as_uint = pytest.importorskip("imageio.core.util").image_as_uint


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


# -- shape validation (pure Python; see the module docstring) -----------------------
@pytest.mark.benchmark(group="shape validation")
def test_is_batch(benchmark):
    a = np.zeros((64, 64, 3), np.uint8)
    assert benchmark(_kernels.is_batch, a) is False


@pytest.mark.benchmark(group="shape validation")
def test_classify_shape(benchmark):
    assert benchmark(_kernels.classify_shape, (8, 64, 64, 3)) == "volume_rgb"


@pytest.mark.benchmark(group="shape validation")
def test_check_image(benchmark):
    a = np.zeros((64, 64, 3), np.uint8)
    assert benchmark(lambda: _kernels.check_image(a, kind="image")) is a


def test_twins_agree_at_benchmark_size(floats):
    np.testing.assert_array_equal(_to_uint(floats[:2]), _reference.to_uint(floats[:2]))
