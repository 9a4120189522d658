"""Stacking frames already in a list into a volume: the kernel against ``np.stack``.

The peer at its best: ``np.stack(list_of_frames)`` (one allocation, one copy per
frame).  Full size (``IMGIO_BENCH_FULL=1``): 256 x 1024 x 1024 uint16 (512 MiB).
CI size: 64 x 512 x 512 (32 MiB), large enough that the copies, not the calls,
are timed (at 32 x 256 x 256, 4 MiB, the volume sits in cache and a call takes
about 1 ms, so per-call costs weigh in).
"""
import numpy as np
import pytest

from imgio import _kernels, _reference

from .conftest import FULL

SHAPE = (256, 1024, 1024) if FULL else (64, 512, 512)
GROUP = f"stack {SHAPE[0]}x{SHAPE[1]}x{SHAPE[2]} u2"


@pytest.fixture(scope="module")
def frames():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 65535, SHAPE[1:], dtype=np.uint16)
    return [frame + i for i in range(SHAPE[0])]


@pytest.mark.benchmark(group=GROUP)
def test_imgio_stack_frames(benchmark, frames, record_peak):
    record_peak(lambda: _kernels.stack_frames(iter(frames)))
    vol = benchmark(lambda: _kernels.stack_frames(iter(frames)))
    assert vol.shape == SHAPE


@pytest.mark.benchmark(group=GROUP)
def test_numpy_stack_list(benchmark, frames, record_peak):
    record_peak(lambda: _reference.stack_frames(iter(frames)))
    vol = benchmark(lambda: _reference.stack_frames(iter(frames)))
    assert vol.shape == SHAPE
