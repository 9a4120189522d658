"""Stacking frames into a volume: the kernel against ``np.stack`` of a list."""
import numpy as np
import pytest

from imgio import _kernels, _reference

from .conftest import FULL

SHAPE = (256, 1024, 1024) if FULL else (32, 256, 256)
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
